"""schemathesis against the service's own OpenAPI schema, on a real uvicorn process and database:
no 5xx, every answer (status, content type, body, headers) conforms to the schema, and every
problem answer has a type its operation documents for its status."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from common_libs.testing.problem_checks import check_problem_type_answered
from schemathesis import Case, Response
from schemathesis.config import SchemathesisConfig

from app.main import create_app
from tests.conftest import SCHEMATHESIS_CASES, make_settings
from tests.integration.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    PASSWORD,
    RunningService,
    unique_email,
)

MAX_EXAMPLES = 25
CONFIG = {
    "generation": {
        "max-examples": MAX_EXAMPLES,
        "mode": "all",  # valid data and data that breaks the schema
        "deterministic": True,  # the same cases on every run
        "database": "none",
        # Every text input refuses U+0000 with a 422 (API.md, "Conventions"), which a schema's
        # "type: string" cannot say: a string with one is not valid data.
        "allow-x00": False,
    },
    "operations": [
        {
            # An opaque cursor is valid only when the service made it; no schema can say which
            # strings those are, so a made-up one may answer 422.
            "include-name": "GET /users",
            "checks": {
                "positive_data_acceptance": {
                    "expected-statuses": ["2xx", "401", "403", "404", "422"]
                }
            },
        }
    ],
}


class Caller:
    """Valid credentials per case: an admin token, or a fresh customer for DELETE /users/me."""

    def __init__(self, base_url: str) -> None:
        self._http = httpx.Client(base_url=base_url)
        self.admin = self._login(ADMIN_EMAIL, ADMIN_PASSWORD)
        self.cases = 0

    def _login(self, email: str, password: str) -> str:
        response = self._http.post("/auth/token", data={"username": email, "password": password})
        response.raise_for_status()
        return f"Bearer {response.json()['access_token']}"

    def fresh_customer(self) -> str:
        """Register and log in a customer no other case uses."""
        email = unique_email("fuzz")
        self._http.post(
            "/users", json={"email": email, "password": PASSWORD, "full_name": "Fuzz"}
        ).raise_for_status()
        return self._login(email, PASSWORD)

    def headers_for(self, case: Case) -> dict[str, str]:
        """The Authorization header this case should carry."""
        if case.method.upper() == "DELETE" and case.path == "/users/me":
            return {"Authorization": self.fresh_customer()}
        return {"Authorization": self.admin}

    def close(self) -> None:
        """Release the HTTP client."""
        self._http.close()


@pytest.fixture(scope="module")
def caller(running_service: RunningService, request: pytest.FixtureRequest) -> Iterator[Caller]:
    """Credentials for the cases; records how many cases ran for the end-of-run summary."""
    instance = Caller(running_service.base_url)
    try:
        yield instance
    finally:
        request.config.stash[SCHEMATHESIS_CASES] = instance.cases
        instance.close()


def no_password_hash_in_answers(ctx: object, response: Response, case: Case) -> None:
    """No answer, whatever the request, carries an Argon2 hash."""
    if b"$argon2" in response.content:
        raise AssertionError("a password hash is in the answer")


# Built from the app's code at collection; the first test proves the process serves the same.
OPENAPI = create_app(make_settings()).openapi()


def problem_types_are_documented(ctx: object, response: Response, case: Case) -> None:
    """A problem answer's type is not blank and is one its operation lists for the status."""
    answer = httpx.Response(
        response.status_code,
        headers=[(name, value) for name, values in response.headers.items() for value in values],
        content=response.content,
        request=httpx.Request(case.method, str(response.request.url)),
    )
    check_problem_type_answered(answer, OPENAPI)


schema = schemathesis.openapi.from_dict(OPENAPI, config=SchemathesisConfig.from_dict(CONFIG))


def test_running_service_publishes_the_tested_schema(running_service: RunningService) -> None:
    response = httpx.get(running_service.base_url + "/openapi.json")

    assert response.json() == OPENAPI


@schema.parametrize()
def test_every_answer_conforms_to_the_schema(
    case: Case, caller: Caller, running_service: RunningService
) -> None:
    caller.cases += 1
    case.call_and_validate(
        base_url=running_service.base_url,
        headers=caller.headers_for(case),
        additional_checks=[no_password_hash_in_answers, problem_types_are_documented],
        timeout=10,
    )
