"""`python -m hq run` with its API on loopback, as uvicorn serves it: the auth failure limit
counts the socket's peer unless a trusted proxy is configured, so a rotated or forged
X-Forwarded-For neither escapes the limit nor locks another address out; and Swagger UI
renders in real headless Chromium from HQ's own files under its Content-Security-Policy."""

from __future__ import annotations

import httpx2 as httpx
import pytest

from hq.api.tokens import TokenStore
from hq.broker import free_tcp_port
from hq.store.sqlite import SqliteStore
from stack.process import wait_http_ready
from tests.integration.test_hq_ingest import deployment, start_hq  # noqa: F401 (a fixture)
from tests.integration.test_hq_page import CHROMIUM, chromium_page

pytestmark = pytest.mark.integration


def run_hq(deployment, extra: str = ""):  # noqa: F811
    tmp_path, port, passwords, config, _ = deployment
    api_port = free_tcp_port()
    config.write_text(config.read_text() + f"""
[api]
port = {api_port}
auth_failures = 3
auth_failure_window_s = 600
{extra}
""")
    with SqliteStore(tmp_path / "hq.db") as store:
        token, _ = TokenStore(store).create("watch", "viewer")
    hq = start_hq(config, passwords)
    url = f"http://127.0.0.1:{api_port}"
    wait_http_ready(f"{url}/readyz", hq)
    return hq, url, token


def me(url: str, token: str, forwarded_for: str) -> int:
    headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": forwarded_for}
    return httpx.get(f"{url}/api/v1/me", headers=headers, timeout=30).status_code


def test_a_rotated_forwarded_for_does_not_escape_the_auth_failure_limit(deployment):  # noqa: F811
    hq, url, token = run_hq(deployment)
    try:
        assert [me(url, "wrong", f"10.0.0.{k}") for k in range(3)] == [401] * 3
        # The three failures were all the loopback peer's: it is held, whatever it claims.
        assert me(url, token, "10.0.0.99") == 429
    finally:
        stopped = hq.stop()
    assert stopped == 0, hq.tail()


def test_behind_a_trusted_proxy_the_forwarded_client_is_counted(deployment):  # noqa: F811
    hq, url, token = run_hq(deployment, 'trusted_proxies = ["127.0.0.1"]')
    try:
        assert [me(url, "wrong", "10.0.0.1") for _ in range(3)] == [401] * 3
        assert me(url, token, "10.0.0.1") == 429  # that client is held ...
        assert me(url, token, "10.0.0.2") == 200  # ... and another behind the proxy is not
    finally:
        stopped = hq.stop()
    assert stopped == 0, hq.tail()


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at "
                                                  "/usr/bin/chromium (apt-get install chromium)")
def test_swagger_ui_renders_offline_under_the_content_security_policy(deployment):  # noqa: F811
    hq, url, _ = run_hq(deployment)
    requested = []
    try:
        with chromium_page() as page:
            page.on("request", lambda request: requested.append(request.url))
            page.goto(f"{url}/api/v1/docs")
            page.locator(".swagger-ui .info .title").wait_for(timeout=30_000)
            title = page.locator(".swagger-ui .info .title").inner_text()
            operations = page.locator(".opblock").count()
            problems = list(page.problems)
    finally:
        stopped = hq.stop()
    assert "dunewatch HQ API" in title and operations > 20
    assert problems == []  # a CSP violation shows as a console error
    assert requested and all(u.startswith(url) or u.startswith("data:") for u in requested)
    assert stopped == 0, hq.tail()
