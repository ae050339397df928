"""Property-based tests from the service's own OpenAPI schema, against the running service.

Every generated request, valid or not, must get a documented status, content type, headers and
body, never a 5xx, and a problem answer a type its operation documents for the status. The number
of cases generated is printed at the end of the run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import schemathesis
from common_libs.testing import LlmServer, TestTokenIssuer
from common_libs.testing.problem_checks import check_problem_type_answered
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import Case, GenerationMode, Response
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

CASES = {"count": 0}
EXAMPLES = {GenerationMode.POSITIVE: 20, GenerationMode.NEGATIVE: 10}


def _problem_types_are_documented(document: Mapping[str, Any]) -> Any:
    """A schemathesis check: a problem answer's type is not blank and is one its operation
    lists for the status in ``document``."""

    def problem_types_are_documented(ctx: object, response: Response, case: Case) -> None:
        answer = httpx.Response(
            response.status_code,
            headers=[
                (name, value) for name, values in response.headers.items() for value in values
            ],
            content=response.content,
            request=httpx.Request(case.method, str(response.request.url)),
        )
        check_problem_type_answered(answer, document)

    return problem_types_are_documented


def _check_operation(
    operation: schemathesis.APIOperation,
    mode: GenerationMode,
    headers: dict[str, str],
    document: Mapping[str, Any],
) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        CASES["count"] += 1
        # Not checked: "schema-valid data is accepted" (an opaque cursor or a conversation id is
        # schema-valid as any string or UUID, yet only those this API handed out exist) and
        # "schema-violating data is rejected" (unknown query parameters are ignored, as HTTP
        # APIs do; unknown body fields are refused, which test_validation covers).
        case.call_and_validate(
            headers=headers,
            excluded_checks=[positive_data_acceptance, negative_data_rejection],
            additional_checks=[_problem_types_are_documented(document)],
        )

    check()


def test_every_answer_matches_the_schema_and_none_is_a_server_error(
    service_url: str, fake_llm_server: LlmServer, issuer: TestTokenIssuer
) -> None:
    fake_llm_server.reset()
    schema = schemathesis.openapi.from_url(service_url + "/openapi.json")
    document = httpx.get(service_url + "/openapi.json").json()
    headers = issuer.headers(ttl_seconds=3600)
    operations = [result.ok() for result in schema.get_all_operations()]

    for operation in operations:
        for mode in EXAMPLES:
            _check_operation(operation, mode, headers, document)

    assert len(operations) == 7
