"""The OpenAPI document says what the problem handlers send: problem+json for every error."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

from common_libs.errors import Conflict, IdempotencyKeyInFlight, NotFound
from common_libs.problem_types import BEARER_AUTH_PROBLEM_TYPES, INVALID_CURSOR, ProblemType
from common_libs.problems import (
    PROBLEM_CONTENT_TYPE,
    Problem,
    install_problem_handlers,
    problem_responses,
)
from common_libs.ratelimit import rate_limit_responses

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


@pytest.mark.parametrize(
    ("status", "says"),
    [(401, 'error="invalid_token"'), (403, 'error="insufficient_scope"'), (404, None)],
)
def test_the_bearer_challenge_is_documented_on_401_and_403(status: int, says: str | None) -> None:
    headers = problem_responses(status)[status].get("headers", {})

    if says is None:
        assert "WWW-Authenticate" not in headers
    else:
        assert says in headers["WWW-Authenticate"]["description"]


def test_entries_share_no_dicts_that_one_documents_editor_could_change_for_all() -> None:
    first, second = problem_responses(503)[503], problem_responses(503)[503]

    first["content"][PROBLEM_CONTENT_TYPE]["schema"]["$ref"] = "elsewhere"
    first["headers"]["Retry-After"]["schema"]["pattern"] = "x"

    assert second["content"] == {PROBLEM_CONTENT_TYPE: PROBLEM_REF}
    assert second["headers"]["Retry-After"]["schema"]["pattern"] == "^[0-9]+$"


def test_problem_keeps_extra_fields_and_types_validation_errors() -> None:
    problem = Problem.model_validate(
        {
            "type": "urn:fleet:test:out-of-stock",
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


class OutOfStock(Conflict):
    """Not enough stock for a product."""

    type = "urn:fleet:test:out-of-stock"
    title = "Out of Stock"


class OrderNotFound(NotFound):
    """No such order."""

    type = "urn:fleet:test:order-not-found"


QUOTA_EXCEEDED = ProblemType("urn:fleet:test:quota-exceeded", 429, "Quota Exceeded", "Used up.")
UNUSED = ProblemType("urn:fleet:test:unused", 409, "Unused", "Never answered.")


def build_typed_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(
        app, problem_types=(*BEARER_AUTH_PROBLEM_TYPES, OrderNotFound, QUOTA_EXCEEDED, UNUSED)
    )

    @app.post("/orders", status_code=201, responses=problem_responses(OutOfStock, 401, 429))
    async def place_order(body: Signup) -> None:
        return None

    @app.get("/orders/{order_id}", responses=problem_responses(404, OrderNotFound, 500))
    async def get_order(order_id: str) -> None:
        return None

    @app.get("/items", responses=problem_responses(INVALID_CURSOR, 422))
    async def list_items() -> None:
        return None

    @app.post("/retire", responses=problem_responses(405, 409))
    async def retire() -> None:
        return None

    return app


def problem_types_of(document: dict[str, Any]) -> dict[tuple[str, str, str], list[str] | None]:
    return {
        key: response.get("x-problem-types") for key, response in error_responses(document).items()
    }


def test_each_error_response_lists_the_problem_types_it_may_carry() -> None:
    document = build_typed_app().openapi()

    assert problem_types_of(document) == {
        ("post", "/orders", "401"): [
            "urn:fleet:common:authentication-required",
            "urn:fleet:common:invalid-token",
            "urn:fleet:common:token-expired",
        ],
        ("post", "/orders", "409"): ["urn:fleet:test:out-of-stock"],
        # Undeclared (FastAPI's own 422): every type of that status some route may answer.
        ("post", "/orders", "422"): [
            "urn:fleet:common:invalid-cursor",
            "urn:fleet:common:validation-failed",
        ],
        ("post", "/orders", "429"): ["urn:fleet:test:quota-exceeded"],
        ("get", "/orders/{order_id}", "404"): [
            "urn:fleet:common:not-found",
            "urn:fleet:test:order-not-found",
        ],
        ("get", "/orders/{order_id}", "422"): [
            "urn:fleet:common:invalid-cursor",
            "urn:fleet:common:validation-failed",
        ],
        ("get", "/orders/{order_id}", "500"): None,
        ("get", "/items", "422"): [
            "urn:fleet:common:invalid-cursor",
            "urn:fleet:common:validation-failed",
        ],
        ("post", "/retire", "405"): None,
        ("post", "/retire", "409"): ["urn:fleet:test:out-of-stock", "urn:fleet:test:unused"],
    }


def test_a_status_declared_by_its_types_alone_lists_only_those() -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/orders/{order_id}", responses=problem_responses(OrderNotFound))
    async def get_order(order_id: int) -> None:
        return None

    responses = app.openapi()["paths"]["/orders/{order_id}"]["get"]["responses"]

    assert responses["404"]["x-problem-types"] == ["urn:fleet:test:order-not-found"]
    assert responses["404"]["description"] == "No such resource."


def test_the_catalogue_lists_every_type_some_operation_answers_sorted() -> None:
    document = build_typed_app().openapi()

    catalogue = document["x-problem-types"]

    assert [entry["type"] for entry in catalogue] == [
        "urn:fleet:common:authentication-required",
        "urn:fleet:common:invalid-cursor",
        "urn:fleet:common:invalid-token",
        "urn:fleet:common:not-found",
        "urn:fleet:common:token-expired",
        "urn:fleet:common:validation-failed",
        "urn:fleet:test:order-not-found",
        "urn:fleet:test:out-of-stock",
        "urn:fleet:test:quota-exceeded",
        "urn:fleet:test:unused",
    ]
    assert catalogue[-3] == {
        "type": "urn:fleet:test:out-of-stock",
        "status": 409,
        "title": "Out of Stock",
        "description": "Not enough stock for a product.",
    }
    assert "insufficient-scope" not in str(catalogue)  # declared, but no operation answers 403


def test_no_declaration_is_left_in_the_document() -> None:
    assert "x-fleet-problem-declaration" not in json.dumps(build_typed_app().openapi())


def test_a_document_rewritten_twice_is_the_same() -> None:
    app = build_typed_app()
    install_problem_handlers(app)

    assert app.openapi() == build_typed_app().openapi()


def test_a_type_without_its_own_name_cannot_be_declared() -> None:
    with pytest.raises(ValueError, match="document its status instead"):
        problem_responses(Conflict)


def test_two_types_of_one_name_are_refused() -> None:
    app = FastAPI()
    other = ProblemType(OutOfStock.type, 409, "Sold Out", "Another meaning.")
    install_problem_handlers(app, problem_types=[other])

    @app.post("/orders", responses=problem_responses(OutOfStock))
    async def place_order() -> None:
        return None

    with pytest.raises(ValueError, match="two different problem types"):
        app.openapi()


def test_about_blank_is_no_type_for_the_catalogue() -> None:
    with pytest.raises(ValueError, match="about:blank"):
        install_problem_handlers(FastAPI(), problem_types=[Conflict])


def test_an_idempotency_key_in_flight_documents_retry_after() -> None:
    entry = problem_responses(IdempotencyKeyInFlight)[409]

    assert "Retry-After" in entry["headers"]


def test_a_rate_limited_operation_lists_the_rate_limited_type() -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/orders", responses=rate_limit_responses(problem_responses(401), 201))
    async def place_order() -> None:
        return None

    responses = app.openapi()["paths"]["/orders"]["post"]["responses"]

    assert responses["429"]["x-problem-types"] == ["urn:fleet:common:rate-limited"]
    assert "x-problem-types" not in responses["401"]  # no 401 type in this app's catalogue


def test_only_statuses_types_and_error_classes_are_documented() -> None:
    with pytest.raises(TypeError, match="not a ProblemType"):
        problem_responses("409")  # type: ignore[arg-type]
