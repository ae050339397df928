"""Every error a FastAPI app can raise answers as RFC 9457 problem+json."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from common_libs.errors import (
    Conflict,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
)
from common_libs.problems import (
    PROBLEM_CONTENT_TYPE,
    install_problem_handlers,
    problem_response,
    validation_errors,
)
from common_libs.request_id import RequestIdMiddleware


class OutOfStock(Conflict):
    type = "urn:fleet:test:out-of-stock"
    title = "Out of Stock"


class SignUp(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str
    password: str = Field(min_length=8)


def build_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(RequestIdMiddleware)

    @app.post("/reservations/{product_id}")
    async def reserve(product_id: str) -> None:
        raise OutOfStock(f"Product {product_id} is out of stock.", extra={"product_id": product_id})

    @app.post("/users", status_code=201)
    async def sign_up(body: SignUp) -> dict[str, str]:
        return {"email": body.email}

    @app.get("/me")
    async def me() -> None:
        raise Unauthorized("A bearer access token is required.")

    @app.get("/chat")
    async def chat() -> None:
        raise TooManyRequests("Token quota used up.", retry_after=60)

    @app.get("/catalog")
    async def catalog() -> None:
        raise ServiceUnavailable("The catalog does not answer.", retry_after=5)

    @app.get("/orders/{order_id}")
    async def order(order_id: str) -> None:
        raise NotFound(f"Order {order_id} does not exist.")

    @app.get("/legacy")
    async def legacy() -> None:
        raise HTTPException(status_code=400, detail={"field": "q"})

    @app.get("/odd")
    async def odd() -> None:
        raise HTTPException(status_code=599, detail="Something odd happened.")

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError("connect to postgresql://app:hunter2@db/orders failed")

    @app.get("/encode/{encoding}")
    async def encode(encoding: str, text: str) -> int:
        # The text arrives as the client sent it; a lone surrogate would come from JSON.
        return len(text.replace("SURROGATE", "\ud800").encode(encoding))

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # raise_app_exceptions=False: see the 500 the server sends instead of the re-raised error.
    transport = httpx.ASGITransport(build_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_problem_error_renders_as_problem_json(client: httpx.AsyncClient) -> None:
    response = await client.post("/reservations/p-1", headers={"X-Request-ID": "req-1"})

    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert response.json() == {
        "type": "urn:fleet:test:out-of-stock",
        "title": "Out of Stock",
        "status": 409,
        "detail": "Product p-1 is out of stock.",
        "request_id": "req-1",
        "product_id": "p-1",
    }


async def test_problem_carries_the_generated_request_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/orders/o-1")

    assert response.json()["request_id"] == response.headers["X-Request-ID"]
    assert len(response.json()["request_id"]) == 32


async def test_unauthorized_answers_with_a_bearer_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/me")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["detail"] == "A bearer access token is required."


@pytest.mark.parametrize(
    ("path", "status", "retry_after"), [("/chat", 429, "60"), ("/catalog", 503, "5")]
)
async def test_retryable_problems_answer_with_retry_after(
    client: httpx.AsyncClient, path: str, status: int, retry_after: str
) -> None:
    response = await client.get(path)

    assert response.status_code == status
    assert response.headers["Retry-After"] == retry_after


@pytest.mark.parametrize(
    ("path", "problem_type"),
    [
        ("/chat", "urn:fleet:common:rate-limited"),
        ("/catalog", "urn:fleet:common:service-unavailable"),
        ("/orders/o-1", "urn:fleet:common:not-found"),
        ("/me", "urn:fleet:common:authentication-required"),
    ],
)
async def test_shared_errors_answer_their_shared_type(
    client: httpx.AsyncClient, path: str, problem_type: str
) -> None:
    response = await client.get(path)

    assert response.json()["type"] == problem_type


async def test_validation_error_lists_loc_msg_and_type(client: httpx.AsyncClient) -> None:
    response = await client.post("/users", json={"password": "long enough password"})

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    body = response.json()
    assert body["type"] == "urn:fleet:common:validation-failed"
    assert body["title"] == "Unprocessable Content"
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert body["errors"] == [
        {"loc": ["body", "email"], "msg": "Field required", "type": "missing"}
    ]


async def test_validation_error_never_echoes_the_input(client: httpx.AsyncClient) -> None:
    response = await client.post("/users", json={"email": "a@example.test", "password": "hunter2"})

    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["errors"]] == [["body", "password"]]
    assert "hunter2" not in response.text


async def test_unknown_body_field_is_rejected(client: httpx.AsyncClient) -> None:
    body = {"email": "a@example.test", "password": "long enough", "is_admin": True}

    response = await client.post("/users", json=body)

    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["errors"]] == [["body", "is_admin"]]


async def test_unknown_route_answers_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/nowhere")

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert response.json()["type"] == "urn:fleet:common:not-found"
    assert response.json()["title"] == "Not Found"
    assert response.json()["request_id"] == response.headers["X-Request-ID"]


async def test_wrong_method_answers_405_problem_keeping_allow(client: httpx.AsyncClient) -> None:
    response = await client.delete("/me")

    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert response.headers["Allow"] == "GET"
    assert response.json()["type"] == "about:blank"
    assert response.json()["title"] == "Method Not Allowed"


async def test_http_exception_with_structured_detail_uses_the_title(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/legacy")

    assert response.status_code == 400
    assert response.json()["type"] == "urn:fleet:common:malformed-request"
    assert response.json()["detail"] == "Bad Request"


async def test_nonstandard_status_gets_a_generic_title(client: httpx.AsyncClient) -> None:
    response = await client.get("/odd")

    assert response.status_code == 599
    assert response.json()["type"] == "about:blank"
    assert response.json()["title"] == "Error"
    assert response.json()["detail"] == "Something odd happened."


async def test_unhandled_error_answers_500_problem_without_internals(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/crash", headers={"X-Request-ID": "crash-1"})

    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert response.headers["X-Request-ID"] == "crash-1"
    body = response.json()
    assert (body["type"], body["title"]) == ("about:blank", "Internal Server Error")
    assert body["request_id"] == "crash-1"
    for internal in ("Traceback", "RuntimeError", "hunter2", "postgresql", "File "):
        assert internal not in response.text


async def test_unhandled_error_is_logged_with_its_traceback(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="common_libs.problems"):
        await client.get("/crash")

    [record] = [r for r in caplog.records if r.name == "common_libs.problems"]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


@pytest.mark.parametrize(("path", "level"), [("/catalog", logging.WARNING), ("/me", logging.INFO)])
async def test_problems_are_logged_at_a_level_matching_their_status(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, path: str, level: int
) -> None:
    with caplog.at_level(logging.INFO, logger="common_libs.problems"):
        await client.get(path)

    assert [r.levelno for r in caplog.records if r.name == "common_libs.problems"] == [level]


def test_problem_response_outside_a_request_has_no_request_id() -> None:
    response = problem_response(status=409, title="Conflict", detail="Taken.")

    assert json.loads(response.body)["request_id"] is None
    assert "X-Request-ID" not in response.headers


def test_validation_errors_keep_only_loc_msg_and_type() -> None:
    errors = [
        {
            "type": "string_too_short",
            "loc": ("body", "password"),
            "msg": "String should have at least 8 characters",
            "input": "hunter2",
            "ctx": {"min_length": 8},
        }
    ]

    assert validation_errors(errors) == [
        {
            "loc": ["body", "password"],
            "msg": "String should have at least 8 characters",
            "type": "string_too_short",
        }
    ]


async def test_text_utf8_cannot_encode_is_a_422_and_an_encoding_bug_a_500(
    client: httpx.AsyncClient,
) -> None:
    surrogate = await client.get("/encode/utf-8", params={"text": "aSURROGATE"})
    ascii_bug = await client.get("/encode/ascii", params={"text": "caf\u00e9"})

    assert surrogate.status_code == 422
    assert surrogate.json()["errors"][0]["type"] == "string_unstorable_character"
    assert ascii_bug.status_code == 500
