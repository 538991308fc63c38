"""The API's guards that do not depend on a process: security headers on every response,
the role checked before a body is parsed, Swagger UI served from HQ itself (or turned off
with the schema still served). A real SQLite store behind Starlette's TestClient."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from hq.api.app import create_app
from hq.api.live import LiveFeed
from hq.store.sqlite import SqliteStore
from tests.unit.test_hq_api_support import running_api, settings

pytestmark = pytest.mark.unit
V1 = "/api/v1"
HEADERS = {"content-security-policy", "x-content-type-options", "x-frame-options",
           "referrer-policy"}  # fmt: skip


@pytest.fixture
def api(tmp_path):
    yield from running_api(tmp_path)


@pytest.mark.parametrize("method, path, body, status", [
    ("GET", "/healthz", None, 200), ("GET", "/readyz", None, 200),
    ("GET", "/", None, 200), ("GET", "/app.js", None, 200),
    ("GET", f"{V1}/tracks", None, 401), ("GET", f"{V1}/nowhere", None, 404),
    ("GET", f"{V1}/docs", None, 200), ("GET", f"{V1}/openapi.json", None, 200),
    ("POST", f"{V1}/zones", b"x" * 70_000, 413),
])  # fmt: skip
def test_every_response_carries_the_security_headers(api, method, path, body, status):
    response = api.client.request(method, path, content=body)
    assert response.status_code == status
    assert HEADERS <= set(response.headers)
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize("method, path, least", [
    ("PUT", "/border", "admin"), ("POST", "/zones", "admin"), ("PUT", "/zones/wadi", "admin"),
    ("PATCH", "/tracks/1", "operator"), ("POST", "/alerts/distress-1/resolve", "operator"),
])  # fmt: skip
def test_a_malformed_body_from_a_role_too_low_gets_403_not_the_parse_details(
        api, method, path, least):  # fmt: skip
    headers = {**api.auth("viewer"), "content-type": "application/json"}
    response = api.client.request(method, V1 + path, content=b'{"broken', headers=headers)
    assert response.status_code == 403
    assert response.json()["detail"] == f"this needs the {least} role; the token has viewer"
    assert "JSON" not in response.text
    allowed = {**api.auth(least), "content-type": "application/json"}
    response = api.client.request(method, V1 + path, content=b'{"broken', headers=allowed)
    assert response.status_code == 422 and "JSON decode error" in response.text


def test_docs_come_from_hq_itself_with_no_inline_script(api):
    page = api.client.get(f"{V1}/docs").text
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith(f"{V1}/docs/") for s in sources)
    assert not re.search(r"<script>\s*\S", page)  # every script is a file
    for source in sources:
        response = api.client.get(source)
        assert response.status_code == 200 and len(response.content) > 40, source
    assert "/api/v1/openapi.json" in api.client.get(f"{V1}/docs/start.js").text


def test_docs_can_be_turned_off_and_the_schema_is_still_served(tmp_path):
    config = settings(tmp_path, docs=False)
    with SqliteStore(config.store) as store:
        with TestClient(create_app(store, config, LiveFeed())) as client:
            assert client.get(f"{V1}/docs").status_code == 404
            assert client.get(f"{V1}/docs/assets/swagger-ui.css").status_code == 404
            assert client.get(f"{V1}/openapi.json").json()["info"]["title"] == (
                "dunewatch HQ API")
