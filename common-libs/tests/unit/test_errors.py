"""Problem errors carry their HTTP status, title and headers."""

from __future__ import annotations

import pytest

from common_libs.errors import (
    BadGateway,
    BadRequest,
    Conflict,
    Forbidden,
    GatewayTimeout,
    NotFound,
    PayloadTooLarge,
    ProblemError,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    UnprocessableContent,
)


@pytest.mark.parametrize(
    ("error_class", "status", "title"),
    [
        (ProblemError, 500, "Internal Server Error"),
        (BadRequest, 400, "Bad Request"),
        (Unauthorized, 401, "Unauthorized"),
        (Forbidden, 403, "Forbidden"),
        (NotFound, 404, "Not Found"),
        (Conflict, 409, "Conflict"),
        (PayloadTooLarge, 413, "Content Too Large"),
        (UnprocessableContent, 422, "Unprocessable Content"),
        (TooManyRequests, 429, "Too Many Requests"),
        (BadGateway, 502, "Bad Gateway"),
        (ServiceUnavailable, 503, "Service Unavailable"),
        (GatewayTimeout, 504, "Gateway Timeout"),
    ],
)
def test_each_error_carries_its_status_and_title(
    error_class: type[ProblemError], status: int, title: str
) -> None:
    error = error_class()

    assert (error.status, error.title, error.type) == (status, title, "about:blank")


def test_detail_defaults_to_the_title() -> None:
    error = NotFound()

    assert error.detail == "Not Found"
    assert str(error) == "Not Found"


def test_detail_and_extra_members_are_kept() -> None:
    error = Conflict("Product p-1 is out of stock.", extra={"product_id": "p-1"})

    assert error.detail == "Product p-1 is out of stock."
    assert error.extra == {"product_id": "p-1"}
    assert error.headers == {}


def test_unauthorized_carries_a_bearer_challenge_besides_other_headers() -> None:
    error = Unauthorized("expired", headers={"Cache-Control": "no-store"})

    assert error.headers == {"WWW-Authenticate": "Bearer", "Cache-Control": "no-store"}


@pytest.mark.parametrize("error_class", [TooManyRequests, ServiceUnavailable])
def test_retry_after_becomes_a_header(error_class: type[TooManyRequests]) -> None:
    error = error_class(retry_after=30, headers={"X-Quota": "chat"})

    assert error.headers == {"X-Quota": "chat", "Retry-After": "30"}


def test_negative_retry_after_is_clamped_to_zero() -> None:
    assert TooManyRequests(retry_after=-5).headers == {"Retry-After": "0"}


def test_retry_after_is_absent_unless_given() -> None:
    assert "Retry-After" not in ServiceUnavailable("down").headers


def test_domain_errors_subclass_a_problem_with_their_own_type() -> None:
    class OutOfStock(Conflict):
        type = "https://errors.test/out-of-stock"

    error = OutOfStock()

    assert isinstance(error, ProblemError)
    assert (error.status, error.type) == (409, "https://errors.test/out-of-stock")
