"""Rate-limit policies, decisions and their HTTP form (the counting itself: integration tests)."""

from __future__ import annotations

import http_sf
import httpx
import pytest
from fastapi import FastAPI

from common_libs.problems import install_problem_handlers, problem_responses
from common_libs.ratelimit import (
    RateLimitDecision,
    RateLimitExceeded,
    RateLimitPolicy,
    rate_limit_responses,
)

ORDERS = RateLimitPolicy("orders", quota=10, window_seconds=60)


@pytest.mark.parametrize(
    ("name", "quota", "window"),
    [
        ("Orders", 10, 60),
        ("orders;q=1", 10, 60),
        ('or"ders', 10, 60),
        ("", 10, 60),
        ("9lives", 10, 60),
        ("orders", 0, 60),
        ("orders", 1_000_000_001, 60),
        ("orders", 10, 0),
        ("orders", 10, 366 * 86_400 + 1),
    ],
)
def test_a_policy_refuses_names_and_numbers_the_fields_cannot_carry(
    name: str, quota: int, window: int
) -> None:
    with pytest.raises(ValueError, match="policy"):
        RateLimitPolicy(name, quota=quota, window_seconds=window)


def test_the_policy_field_is_a_structured_list_with_quota_and_window() -> None:
    value = ORDERS.field_value

    assert http_sf.parse(value.encode(), tltype="list") == [("orders", {"q": 10, "w": 60})]


@pytest.mark.parametrize(
    ("hits", "allowed", "remaining"), [(1, True, 9), (10, True, 0), (11, False, 0)]
)
def test_a_decision_counts_down_to_the_quota_and_refuses_past_it(
    hits: int, allowed: bool, remaining: int
) -> None:
    decision = RateLimitDecision(policy=ORDERS, hits=hits, reset_seconds=42)

    assert (decision.is_allowed, decision.remaining) == (allowed, remaining)
    headers = decision.headers()
    assert http_sf.parse(headers["RateLimit"].encode(), tltype="list") == [
        ("orders", {"r": remaining, "t": 42})
    ]
    assert headers["RateLimit-Policy"] == ORDERS.field_value


async def test_an_exceeded_limit_answers_429_problem_with_retry_after_and_the_fields() -> None:
    app = FastAPI()
    install_problem_handlers(app)
    refused = RateLimitDecision(policy=ORDERS, hits=11, reset_seconds=17)

    @app.post("/orders")
    async def place() -> None:
        raise RateLimitExceeded(refused)

    @app.post("/login")
    async def login() -> None:
        raise RateLimitExceeded(refused, "At most {quota} in {window_seconds} s ({reset_seconds}).")

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post("/orders")
        custom = await client.post("/login")

    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "17"
    assert response.headers["ratelimit"] == '"orders";r=0;t=17'
    assert response.headers["ratelimit-policy"] == '"orders";q=10;w=60'
    body = response.json()
    assert (body["status"], body["title"]) == (429, "Too Many Requests")
    assert body["type"] == "urn:fleet:common:rate-limited"
    assert body["detail"] == "Too many requests: at most 10 per 60 s; try again in 17 s."
    assert custom.json()["detail"] == "At most 10 in 60 s (17)."


def test_the_responses_document_the_429_and_the_fields_on_the_answers_that_carry_them() -> None:
    app = FastAPI()
    install_problem_handlers(app)
    problems = problem_responses(401, 422, descriptions={401: "Wrong password."})

    @app.post("/orders", status_code=201, responses=rate_limit_responses(problems, 201))
    async def place() -> None:
        """Place an order."""

    @app.post(
        "/login",
        responses=rate_limit_responses(problems, 401, description="Too many failed logins."),
    )
    async def login() -> None:
        """Log in."""

    document = app.openapi()
    orders = document["paths"]["/orders"]["post"]["responses"]
    logins = document["paths"]["/login"]["post"]["responses"]

    fields = {"RateLimit-Policy", "RateLimit"}
    assert set(orders["429"]["headers"]) == {"Retry-After", *fields}
    assert orders["429"]["content"] == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    assert orders["429"]["description"].startswith("Too many requests")
    assert set(orders["201"]["headers"]) == fields
    assert orders["201"]["description"] == "Successful Response"
    assert set(orders["401"]["headers"]) == {"WWW-Authenticate"}
    assert logins["429"]["description"] == "Too many failed logins."
    assert set(logins["401"]["headers"]) == {"WWW-Authenticate", *fields}
    assert logins["401"]["description"] == "Wrong password."
    assert "headers" not in logins["200"]
    assert set(problems[401]["headers"]) == {"WWW-Authenticate"}
