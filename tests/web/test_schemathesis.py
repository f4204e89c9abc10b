"""Schemathesis against the OpenAPI schema: no generated request gets a 5xx (a few seconds).

Schemathesis' own pytest plugin does not run under pytest 9 here, so each operation's Hypothesis
strategy is drawn directly.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

schemathesis = pytest.importorskip("schemathesis")


@pytest.fixture(scope="module")
def api_schema(demo_db: Path):
    from deeproot.web.app import create_app
    from deeproot.web.settings import Settings

    app = create_app(Settings(db=demo_db, demo_catalog=True, max_upload_mb=1))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_every_operation_is_covered(api_schema) -> None:
    ops = {(o.ok().method.upper(), o.ok().path) for o in api_schema.get_all_operations()}
    assert ops == {("POST", "/api/diagnose"), ("GET", "/api/recommend"),
                   ("GET", "/api/products/{goods_no}"), ("GET", "/api/health")}


@pytest.mark.parametrize(
    "path", ["/api/diagnose", "/api/recommend", "/api/products/{goods_no}", "/api/health"]
)
def test_no_server_error_on_generated_input(api_schema, path: str) -> None:
    op = next(o.ok() for o in api_schema.get_all_operations() if o.ok().path == path)
    seen: dict[int, int] = {}

    @given(case=op.as_strategy())
    @settings(max_examples=15, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case) -> None:
        response = case.call()
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        assert response.status_code < 500, (case.method, case.path, response.text[:300])
        if response.status_code >= 400:
            body = response.json()  # errors are JSON with a message, never a page or a trace
            assert isinstance(body["detail"], str) and body["detail"]
            assert "Traceback" not in response.text

    run()
    assert sum(seen.values()) >= 1
