"""Schema-driven fuzzing of the live service: no request the OpenAPI document allows (or breaks) may 5xx.

Each operation gets a few positive (schema-valid) and negative (schema-breaking) examples from
schemathesis, sent over loopback to a real uvicorn server with the write token, so writes are
exercised too. Bounded (``EXAMPLES`` per operation and mode) to stay well under a minute.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.fixtures_server import serve_store, two_projects  # noqa: F401

TOKEN = "fuzz-token"
EXAMPLES = 15


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors(two_projects, mode):
    with serve_store(two_projects, token=TOKEN) as s:
        schema = schemathesis.openapi.from_url(f"{s.url}/openapi.json")
        headers = {"Authorization": f"Bearer {TOKEN}"}
        tested = 0
        for result in schema.get_all_operations():
            op = result.ok()

            @given(case=op.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            def run(case):
                case.call_and_validate(base_url=s.url, headers=headers, checks=[not_a_server_error])

            try:
                run()
            except Unsatisfiable:  # nothing to break (e.g. GET /health takes no input)
                continue
            tested += 1
        assert tested >= (15 if mode == GenerationMode.POSITIVE else 8)
