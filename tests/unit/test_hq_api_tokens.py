"""API tokens: hashed at rest, expiry and revocation, the admin command, and the brake on
failed authentications (429 with Retry-After per client address)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from fastapi.testclient import TestClient

from hq.api.app import create_app
from hq.api.auth import FailureLimiter
from hq.api.live import LiveFeed
from hq.api.tokens import Role, TokenRejected, TokenStore
from hq.store.sqlite import SqliteStore
from tests.conftest import PROJECT_ROOT
from tests.unit.test_hq_api_support import settings

pytestmark = pytest.mark.unit


def test_a_token_verifies_until_it_expires_or_is_revoked(tmp_path):
    store = TokenStore(SqliteStore(tmp_path / "hq.db"))
    token, record = store.create("ops-1", "operator", expires_at=2000.0, now=1000.0)
    assert store.verify(token, now=1999.0).role == Role.OPERATOR
    with pytest.raises(TokenRejected, match="expired"):
        store.verify(token, now=2000.0)
    other, _ = store.create("ops-2", "viewer", now=1000.0)
    assert store.revoke("ops-2", now=1500.0) == 1
    with pytest.raises(TokenRejected, match="revoked"):
        store.verify(other, now=1600.0)
    assert [t.name for t in store.tokens() if t.active(1600.0)] == ["ops-1"]


def test_names_are_unique_among_active_tokens_and_bad_requests_are_refused(tmp_path):
    store = TokenStore(SqliteStore(tmp_path / "hq.db"))
    store.create("alice", "admin")
    with pytest.raises(ValueError, match="exists"):
        store.create("alice", "viewer")
    store.revoke("alice")
    store.create("alice", "viewer")  # a revoked name may be given a new token
    with pytest.raises(ValueError):
        store.create("bob", "superuser")
    with pytest.raises(ValueError, match="future"):
        store.create("bob", "viewer", expires_at=time.time() - 1)


def test_roles_are_ordered():
    assert Role.ADMIN.allows(Role.OPERATOR) and Role.OPERATOR.allows(Role.VIEWER)
    assert not Role.VIEWER.allows(Role.OPERATOR) and not Role.OPERATOR.allows(Role.ADMIN)


def test_the_admin_command_prints_the_token_once_and_lists_and_revokes(tmp_path):
    db = tmp_path / "hq.db"

    def hq(*args):
        return subprocess.run([sys.executable, "-m", "hq", "token", *args, "--db", str(db)],
                              capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=60)

    created = hq("create", "--name", "night-shift", "--role", "operator", "--expires-days", "7")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert TokenStore(SqliteStore(db)).verify(token).name == "night-shift"
    listing = hq("list")
    assert "night-shift" in listing.stdout and "active" in listing.stdout
    assert token.split("_", 2)[2] not in listing.stdout + db.read_bytes().decode("latin-1")
    assert hq("revoke", "--name", "night-shift").returncode == 0
    assert "revoked" in hq("list").stdout
    assert hq("create", "--name", "x", "--role", "root").returncode == 2  # argparse refuses


def test_an_expired_token_is_refused_by_the_api(tmp_path):
    config = settings(tmp_path)
    store = SqliteStore(config.store)
    tokens = TokenStore(store)
    token, _ = tokens.create("brief", "viewer", expires_at=time.time() + 0.5)
    with TestClient(create_app(store, config, LiveFeed())) as client:
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/v1/me", headers=headers).json()["name"] == "brief"
        time.sleep(0.6)
        expired = client.get("/api/v1/me", headers=headers)
    assert expired.status_code == 401 and expired.json()["detail"] == "token expired"


def test_repeated_failures_from_one_address_get_429_with_retry_after_even_with_a_good_token(
        tmp_path):  # fmt: skip
    config = settings(tmp_path, auth_failures=3, auth_failure_window_s=60)
    store = SqliteStore(config.store)
    good, _ = TokenStore(store).create("ok", "viewer")
    with TestClient(create_app(store, config, LiveFeed())) as client:
        forged = {"Authorization": "Bearer dw_00000000_guess"}
        codes = [client.get("/api/v1/tracks", headers=forged).status_code for _ in range(4)]
        limited = client.get("/api/v1/tracks", headers={"Authorization": f"Bearer {good}"})
        healthy = client.get("/healthz")
    assert codes == [401, 401, 401, 429]
    assert limited.status_code == 429 and 0 < int(limited.headers["retry-after"]) <= 60
    assert healthy.status_code == 200  # health needs no token and is never limited


def test_the_failure_window_slides():
    limiter = FailureLimiter(limit=2, window_s=10)
    limiter.failed("10.0.0.1", 100.0)
    limiter.failed("10.0.0.1", 105.0)
    assert limiter.retry_after("10.0.0.1", 106.0) == 4
    assert limiter.retry_after("10.0.0.2", 106.0) is None  # per address
    assert limiter.retry_after("10.0.0.1", 110.5) is None  # the first failure left the window
