"""The JSON API against its own OpenAPI document: schemathesis generates valid and invalid
requests for every operation /openapi.json lists (routes added later included), sends them with
an API token to the application served by uvicorn on a database with a few rows, and no answer
may be a server error. Bounded: a few examples per operation, derandomized, no example database."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from support.webapp import desk_app, desk_rows, serve_in_thread

from monitor.store.db import SessionFactory
from monitor.store.tokens import create_token

# Examples per operation and generation mode: at most 15, fewer as operations are added, so
# that the whole run (about 1 s per operation and mode here) stays within the budget.
MAX_EXAMPLES = 15
TOTAL_EXAMPLES = 300
BUDGET_S = 90.0

pytestmark = pytest.mark.slow  # tens of seconds per backend: the full suite runs it, the fast tier not


def test_no_api_operation_answers_a_server_error(sessions: SessionFactory) -> None:
    desk_rows(sessions)
    with sessions.begin() as session:
        token = create_token(session, "schemathesis", datetime.now(UTC))
    auth = {"Authorization": f"Bearer {token}"}
    with serve_in_thread(desk_app(sessions)) as base_url:
        schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert any(op.path == "/api/feeds" for op in operations), [op.path for op in operations]
        examples = max(3, min(MAX_EXAMPLES, TOTAL_EXAMPLES // (2 * len(operations))))
        started = time.monotonic()
        skipped: list[str] = []
        with requests.Session() as http:
            for operation in operations:
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    strategy = operation.as_strategy(generation_mode=mode)
                    try:
                        _exercise(strategy, http, base_url, auth, examples)
                    except Unsatisfiable:
                        # Nothing to get wrong (no parameters, no body): only valid requests exist.
                        assert mode is GenerationMode.NEGATIVE, operation.path
                        skipped.append(f"{operation.method.upper()} {operation.path}")
        elapsed = time.monotonic() - started
    assert elapsed < BUDGET_S, f"{len(operations)} operations took {elapsed:.0f}s"
    assert len(skipped) < len(operations), skipped  # invalid requests were sent to something


def _exercise(
    strategy: st.SearchStrategy[schemathesis.Case],
    http: requests.Session,
    base_url: str,
    auth: dict[str, str],
    examples: int,
) -> None:
    @settings(
        max_examples=examples,
        deadline=None,  # a slow shared machine is not a failure; the total time is bounded above
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def check(case: schemathesis.Case) -> None:
        response = case.call(base_url=base_url, session=http, headers=auth, timeout=10)
        case.validate_response(response, checks=[not_a_server_error], headers=auth)

    check()
