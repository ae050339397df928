"""Problem errors carry their HTTP status, title and headers."""

from __future__ import annotations

import pytest

from common_libs import problem_types
from common_libs.errors import (
    AuthenticationRequired,
    BadGateway,
    BadRequest,
    Conflict,
    Forbidden,
    GatewayTimeout,
    IdempotencyKeyInFlight,
    IdempotencyKeyMissing,
    IdempotencyKeyReused,
    InsufficientScope,
    InvalidToken,
    NotFound,
    PayloadTooLarge,
    ProblemError,
    ServiceUnavailable,
    TokenExpired,
    TooManyRequests,
    Unauthorized,
    UnprocessableContent,
    bearer_challenge,
)
from common_libs.problem_types import ProblemType


@pytest.mark.parametrize(
    ("error_class", "problem_type"),
    [
        (BadRequest, problem_types.MALFORMED_REQUEST),
        (Unauthorized, problem_types.AUTHENTICATION_REQUIRED),
        (AuthenticationRequired, problem_types.AUTHENTICATION_REQUIRED),
        (InvalidToken, problem_types.INVALID_TOKEN),
        (TokenExpired, problem_types.TOKEN_EXPIRED),
        (Forbidden, problem_types.INSUFFICIENT_SCOPE),
        (InsufficientScope, problem_types.INSUFFICIENT_SCOPE),
        (NotFound, problem_types.NOT_FOUND),
        (PayloadTooLarge, problem_types.CONTENT_TOO_LARGE),
        (TooManyRequests, problem_types.RATE_LIMITED),
        (BadGateway, problem_types.UPSTREAM_FAILED),
        (ServiceUnavailable, problem_types.SERVICE_UNAVAILABLE),
        (GatewayTimeout, problem_types.UPSTREAM_TIMEOUT),
        (IdempotencyKeyMissing, problem_types.IDEMPOTENCY_KEY_MISSING),
        (IdempotencyKeyInFlight, problem_types.IDEMPOTENCY_KEY_IN_FLIGHT),
        (IdempotencyKeyReused, problem_types.IDEMPOTENCY_KEY_REUSED),
    ],
)
def test_each_shared_error_carries_its_shared_problem_type(
    error_class: type[ProblemError], problem_type: ProblemType
) -> None:
    error = error_class()

    assert error.problem_type is problem_type
    assert (error.type, error.status, error.title) == (
        problem_type.type,
        problem_type.status,
        problem_type.title,
    )


@pytest.mark.parametrize(
    ("error_class", "status", "title"),
    [
        (ProblemError, 500, "Internal Server Error"),
        (Conflict, 409, "Conflict"),
        (UnprocessableContent, 422, "Unprocessable Content"),
    ],
)
def test_a_plain_status_base_is_about_blank(
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


def test_authentication_required_carries_the_bare_challenge() -> None:
    error = AuthenticationRequired()

    assert error.headers == {"WWW-Authenticate": "Bearer"}
    assert error.detail == "A bearer access token is required."


def test_an_invalid_token_says_invalid_token_and_what_is_wrong() -> None:
    error = InvalidToken("The access token has no key id.")

    assert error.headers == {
        "WWW-Authenticate": 'Bearer error="invalid_token", '
        'error_description="The access token has no key id."'
    }


def test_an_expired_token_says_invalid_token_and_that_it_expired() -> None:
    error = TokenExpired()

    assert error.headers == {
        "WWW-Authenticate": 'Bearer error="invalid_token", '
        'error_description="The access token expired"'
    }
    assert isinstance(error, InvalidToken)


def test_a_missing_role_says_insufficient_scope() -> None:
    error = InsufficientScope()

    assert error.headers == {
        "WWW-Authenticate": 'Bearer error="insufficient_scope", '
        'error_description="Your role may not perform this operation."'
    }


def test_a_forbidden_domain_error_with_its_own_type_carries_no_challenge() -> None:
    class WrongCurrentPassword(Forbidden):
        """The current password is not correct."""

        type = "urn:fleet:test:wrong-current-password"

    assert WrongCurrentPassword("no").headers == {}


def test_a_401_domain_error_with_its_own_type_carries_the_bare_challenge() -> None:
    class InvalidCredentials(Unauthorized):
        type = "urn:fleet:test:invalid-credentials"

    assert InvalidCredentials().headers == {"WWW-Authenticate": "Bearer"}


@pytest.mark.parametrize(
    ("detail", "description"),
    [
        ('a "quoted" name', "a 'quoted' name"),
        ("back\\slash", "backslash"),
        ("caf\u00e9\nnext line", "cafnext line"),
    ],
)
def test_an_error_description_holds_only_what_rfc_6750_allows(
    detail: str, description: str
) -> None:
    challenge = InvalidToken(detail).headers["WWW-Authenticate"]

    assert challenge == f'Bearer error="invalid_token", error_description="{description}"'


def test_idempotency_key_in_flight_says_when_to_retry() -> None:
    assert IdempotencyKeyInFlight(retry_after=2).headers == {"Retry-After": "2"}
    assert IdempotencyKeyInFlight().headers == {"Retry-After": "1"}


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
        type = "urn:fleet:test:out-of-stock"

    error = OutOfStock()

    assert isinstance(error, ProblemError)
    assert (error.status, error.type) == (409, "urn:fleet:test:out-of-stock")


def test_a_type_set_on_a_subclass_becomes_a_problem_type_described_by_its_docstring() -> None:
    class OutOfStock(Conflict):
        """Not enough stock for a product
        (``product_id`` names it).

        More about the implementation.
        """

        type = "urn:fleet:test:out-of-stock"
        title = "Out of Stock"

    assert OutOfStock.problem_type == ProblemType(
        "urn:fleet:test:out-of-stock",
        409,
        "Out of Stock",
        "Not enough stock for a product (`product_id` names it).",
    )


def test_a_declared_problem_type_sets_type_status_and_title() -> None:
    declared = ProblemType("urn:fleet:test:quota-exceeded", 429, "Quota Exceeded", "Used up.")

    class QuotaExceeded(TooManyRequests):
        problem_type = declared

    error = QuotaExceeded(retry_after=5)

    assert (error.type, error.status, error.title) == (declared.type, 429, "Quota Exceeded")
    assert error.headers == {"Retry-After": "5"}


def test_a_subclass_without_declarations_keeps_its_parents_type() -> None:
    class CatalogUnavailable(ServiceUnavailable):
        """The catalog does not answer."""

    assert CatalogUnavailable.problem_type is problem_types.SERVICE_UNAVAILABLE


def test_a_mixin_first_base_leaves_status_and_title_to_the_problem_base() -> None:
    class Refusal(ProblemError):
        """Stored with its key."""

    class OutOfStock(Refusal, Conflict):
        type = "urn:fleet:test:out-of-stock"

    class Refused(Refusal, Conflict):
        """No type of its own."""

    assert (OutOfStock.status, OutOfStock.title) == (409, "Conflict")
    assert (Refused.type, Refused.status) == ("about:blank", 409)


def test_changing_the_status_of_a_shared_type_is_refused() -> None:
    with pytest.raises(TypeError, match="give it its own type"):

        class Odd(NotFound):
            status = 410


def test_a_problem_type_that_disagrees_with_the_class_attributes_is_refused() -> None:
    with pytest.raises(TypeError, match="disagrees"):

        class Odd(Conflict):
            problem_type = problem_types.NOT_FOUND
            status = 409


@pytest.mark.parametrize(
    ("type_", "status"),
    [("https://errors.test/x", 409), ("urn:fleet:Test:x", 409), ("urn:fleet:test:x", 302)],
)
def test_a_problem_type_outside_the_fleets_scheme_is_refused(type_: str, status: int) -> None:
    with pytest.raises(ValueError, match="problem"):
        ProblemType(type_, status, "Title", "What it means.")


def test_a_subclass_repeating_its_parents_title_keeps_the_parents_type() -> None:
    class Missing(NotFound):
        title = "Not Found"

    assert Missing.problem_type is problem_types.NOT_FOUND


def test_a_challenge_may_name_an_error_without_a_description() -> None:
    assert bearer_challenge("invalid_request") == 'Bearer error="invalid_request"'


def test_a_problem_type_needs_a_title() -> None:
    with pytest.raises(ValueError, match="has no title"):
        ProblemType("urn:fleet:test:x", 409, " ", "What it means.")
