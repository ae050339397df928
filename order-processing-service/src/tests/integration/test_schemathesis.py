"""schemathesis against the service's own OpenAPI schema: no 5xx, every answer as documented,
each problem with a type its operation documents for that status."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest
import schemathesis
from common_libs.testing import TestTokenIssuer, UvicornThread
from common_libs.testing.problem_checks import check_problem_type_answered
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.config import Settings
from app.main import create_app
from tests.conftest import SCHEMATHESIS_CASES

# Per operation and generation mode; keeps the suite fast while covering every route.
MAX_EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]


def _as_httpx(response: schemathesis.Response) -> httpx.Response:
    """The answer as common-libs' problem type check reads it."""
    request = httpx.Request(str(response.request.method), str(response.request.url))
    headers = [(name, value) for name, values in response.headers.items() for value in values]
    return httpx.Response(
        response.status_code, headers=headers, content=response.content, request=request
    )


def test_generated_requests_get_no_5xx_and_documented_answers(
    service_settings: Callable[..., Settings],
    issuer: TestTokenIssuer,
    request: pytest.FixtureRequest,
) -> None:
    admin = issuer.headers(role="admin", subject=str(uuid.uuid4()))
    cases = problems = 0
    # One admin places every generated order: a limit per user would refuse all but the first
    # few, and the answers to the rest would never be checked.
    limits_out_of_reach = service_settings(place_order_limit=1_000_000)
    app = create_app(limits_out_of_reach)
    document = app.openapi()
    with UvicornThread(app, lifespan="on") as server:
        schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                @given(case=operation.as_strategy(generation_mode=mode))
                @settings(
                    max_examples=MAX_EXAMPLES,
                    deadline=None,
                    database=None,
                    derandomize=True,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck),
                )
                def check(case: schemathesis.Case) -> None:
                    nonlocal cases, problems
                    cases += 1
                    # The token goes into the case itself, not only into the request: the
                    # negative-data check judges the case's headers, and would count a case
                    # whose only negation is a missing Authorization header (which is never
                    # missing here) as invalid data accepted.
                    case.headers = {**(case.headers or {}), **admin}
                    response = case.call_and_validate(base_url=server.url, checks=CHECKS)
                    answer = _as_httpx(response)
                    check_problem_type_answered(answer, document)
                    problems += answer.headers.get("content-type") == "application/problem+json"

                check()

    request.config.stash[SCHEMATHESIS_CASES] = cases
    assert cases > 0
    assert problems > 0
