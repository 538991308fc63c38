"""Schemathesis against the API's own OpenAPI schema: every operation, with an admin's token
and with none; no 500s, every status code, content type and body as documented.

Every check schemathesis has runs but one: that schema-valid input is accepted. Boxes and
time windows have rules across fields (south <= north, t0 < t1, a window within the
history kept) that a schema cannot state; the API refuses those with a documented 422.

Examples are few per operation (the suite runs on two shared cores); the targeted
tests in tests/unit/test_hq_api*.py cover the cases that matter one by one.
"""

from __future__ import annotations

import time

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from hq.api.app import create_app
from hq.api.live import LiveFeed
from hq.store.sqlite import SqliteStore
from tests.unit.test_hq_api_support import fill, make_tokens
from tests.unit.test_hq_api_support import settings as api_settings

pytestmark = pytest.mark.integration
EXAMPLES = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))  # fmt: skip


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("schema")
    config = api_settings(tmp, auth_failures=100_000)
    store = SqliteStore(config.store)
    fill(store, time.time())
    tokens = make_tokens(store)
    app = create_app(store, config, LiveFeed(tick_s=0.05))
    with TestClient(app):  # runs the lifespan: the live feed is seeded and ticking
        yield app, tokens
    store.close()


def operations(app, without: tuple[str, ...] = ()):
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    found = [result.ok() for result in schema.get_all_operations()]
    return [op for op in found if op.path not in without]


def check_all(operations, headers: dict[str, str], also=lambda case, response: None) -> None:
    """Run each operation's examples; report every operation that failed, not just the first."""
    failed = {}
    for operation in operations:
        @given(case=operation.as_strategy())
        @EXAMPLES
        def run(case):
            also(case, case.call_and_validate(headers=headers,
                                              excluded_checks=[positive_data_acceptance]))

        try:
            run()
        except Exception as error:  # schemathesis' failure groups and assertion errors alike
            failed[operation.label] = str(error)[:2000]
    assert not failed, "\n\n".join(f"{label}:\n{text}" for label, text in failed.items())


def test_every_operation_with_an_admin_token_answers_as_documented(served):
    app, tokens = served
    # The stream never ends by design, so with a token it is read over a real socket
    # instead (tests/integration/test_hq_api_stream.py).
    check_all(operations(app, without=("/api/v1/stream",)),
              {"Authorization": f"Bearer {tokens['admin']}"})


def test_every_operation_without_a_token_answers_as_documented(served):
    app, _ = served

    def refused(case, response):
        if case.path not in ("/healthz", "/readyz"):
            assert response.status_code in (401, 429), (case.path, response.text)

    check_all(operations(app), {}, refused)
