"""The OpenAPI document says what the problem handlers send: problem+json for every error."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

from common_libs.problems import (
    PROBLEM_CONTENT_TYPE,
    Problem,
    install_problem_handlers,
    problem_responses,
)

PROBLEM_REF = {"schema": {"$ref": "#/components/schemas/Problem"}}


class Signup(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str


class ValidationError(BaseModel):
    """An app's own model named like FastAPI's (whose schema FastAPI then files under it)."""

    field: str


def build_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/users", status_code=201, responses=problem_responses(409))
    async def sign_up(body: Signup) -> None:
        return None

    @app.get("/reports/{report_id}", responses={404: {"model": Signup}, "5XX": {}})
    async def report(report_id: str) -> None:
        return None

    return app


def error_responses(document: dict[str, Any]) -> dict[tuple[str, str, str], Any]:
    return {
        (method, path, status): response
        for path, item in document["paths"].items()
        for method, operation in item.items()
        for status, response in operation["responses"].items()
        if status[0] in "45"
    }


def test_every_error_response_is_documented_as_problem_json() -> None:
    document = build_app().openapi()

    errors = error_responses(document)

    assert set(errors) == {
        ("post", "/users", "409"),
        ("post", "/users", "422"),
        ("get", "/reports/{report_id}", "404"),
        ("get", "/reports/{report_id}", "422"),
        ("get", "/reports/{report_id}", "5XX"),
    }
    assert all(
        response["content"] == {PROBLEM_CONTENT_TYPE: PROBLEM_REF} for response in errors.values()
    )


def test_problem_schemas_replace_fastapis_validation_schemas() -> None:
    schemas = build_app().openapi()["components"]["schemas"]

    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas
    assert schemas["Problem"]["required"] == ["type", "title", "status", "detail", "request_id"]
    assert schemas["Problem"]["additionalProperties"] is True
    errors = schemas["Problem"]["properties"]["errors"]["anyOf"][0]
    assert errors["items"] == {"$ref": "#/components/schemas/ProblemFieldError"}
    assert set(schemas["ProblemFieldError"]["properties"]) == {"loc", "msg", "type"}


def test_a_validation_schema_still_referred_to_stays() -> None:
    app = build_app()

    @app.get("/checks", response_model=ValidationError)
    async def checks() -> ValidationError:
        return ValidationError(field="x")

    document = app.openapi()

    answer = document["paths"]["/checks"]["get"]["responses"]["200"]["content"]["application/json"]
    assert answer["schema"] == {"$ref": "#/components/schemas/ValidationError"}
    assert "ValidationError" in document["components"]["schemas"]


def test_the_document_is_built_once() -> None:
    app = build_app()

    assert app.openapi() is app.openapi()


def test_installing_twice_documents_the_same() -> None:
    app = build_app()
    install_problem_handlers(app)

    assert app.openapi() == build_app().openapi()


def test_problem_responses_refer_to_the_problem_schema_with_default_descriptions() -> None:
    responses = problem_responses(401, 404, 418)

    assert {status: entry["description"] for status, entry in responses.items()} == {
        401: "Missing, invalid or expired access token (`WWW-Authenticate: Bearer`).",
        404: "No such resource.",
        418: "I'm a Teapot",
    }
    assert all(
        entry["content"] == {PROBLEM_CONTENT_TYPE: PROBLEM_REF} for entry in responses.values()
    )


def test_a_service_overrides_descriptions_per_call() -> None:
    responses = problem_responses(404, 409, descriptions={404: "No such order.", 500: "unused"})

    assert responses[404]["description"] == "No such order."
    assert responses[409]["description"] == "The request conflicts with the current state."
    assert set(responses) == {404, 409}


@pytest.mark.parametrize(("status", "has_retry_after"), [(429, True), (503, True), (502, False)])
def test_retry_after_is_documented_where_problems_carry_it(
    status: int, has_retry_after: bool
) -> None:
    headers = problem_responses(status)[status].get("headers", {})

    assert ("Retry-After" in headers) is has_retry_after


def test_entries_share_no_dicts_that_one_documents_editor_could_change_for_all() -> None:
    first, second = problem_responses(503)[503], problem_responses(503)[503]

    first["content"][PROBLEM_CONTENT_TYPE]["schema"]["$ref"] = "elsewhere"
    first["headers"]["Retry-After"]["schema"]["pattern"] = "x"

    assert second["content"] == {PROBLEM_CONTENT_TYPE: PROBLEM_REF}
    assert second["headers"]["Retry-After"]["schema"]["pattern"] == "^[0-9]+$"


def test_problem_keeps_extra_fields_and_types_validation_errors() -> None:
    problem = Problem.model_validate(
        {
            "type": "https://errors.test/out-of-stock",
            "title": "Out of Stock",
            "status": 409,
            "detail": "No more.",
            "request_id": None,
            "product_id": "p-1",
            "errors": [{"loc": ["body", 0], "msg": "bad"}],
        }
    )

    assert problem.model_dump()["product_id"] == "p-1"
    assert problem.errors is not None
    assert problem.errors[0].loc == ["body", 0]
