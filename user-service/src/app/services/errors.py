"""Domain errors: each carries its HTTP status and problem type (``urn:fleet:users:<name>``);
common-libs renders them as problem+json. ``PROBLEM_TYPES`` is the service's catalogue."""

from __future__ import annotations

from collections.abc import Mapping

from common_libs.errors import (
    Conflict,
    Forbidden,
    NotFound,
    ProblemError,
    Unauthorized,
    UnprocessableContent,
)
from common_libs.problem_types import (
    BEARER_AUTH_PROBLEM_TYPES,
    INVALID_CURSOR,
    RATE_LIMITED,
    ProblemType,
)

from app.db.session import KeepsChanges

__all__ = [
    "PROBLEM_TYPES",
    "EmailAlreadyRegistered",
    "InvalidClientCredentials",
    "InvalidCredentials",
    "InvalidRefreshToken",
    "ProviderStateUnmet",
    "RefreshTokenNotFound",
    "RefreshTokenReused",
    "UnknownProviderState",
    "UserNotFound",
    "WrongCurrentPassword",
]


def _users(name: str, status: int, title: str, description: str) -> ProblemType:
    return ProblemType(f"urn:fleet:users:{name}", status, title, description)


class EmailAlreadyRegistered(Conflict):
    """Another account has this email (compared case-insensitively)."""

    problem_type = _users(
        "email-already-registered",
        409,
        "Email Already Registered",
        "An account with this email already exists (emails are compared case-insensitively).",
    )

    def __init__(self) -> None:
        super().__init__("An account with this email already exists.")


class InvalidCredentials(Unauthorized):
    """Unknown email or wrong password: one answer for both (``headers``: the login limit's).

    The token endpoint's answer to a refused password grant: a ``401`` with the bare
    ``WWW-Authenticate: Bearer`` challenge (no access token was involved).
    """

    problem_type = _users(
        "invalid-credentials",
        401,
        "Invalid Credentials",
        "The email or password is incorrect (one answer for an unknown email and a wrong "
        "password); `RateLimit` says how many failed logins the username has left.",
    )

    def __init__(self, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__("The email or password is incorrect.", headers=headers)


class InvalidClientCredentials(Unauthorized):
    """Unknown client or wrong client secret: one answer for both."""

    problem_type = _users(
        "invalid-client-credentials",
        401,
        "Invalid Client Credentials",
        "The client id or secret of the client-credentials grant is incorrect (one answer for "
        "both).",
    )

    def __init__(self) -> None:
        super().__init__("The client credentials are incorrect.")


class InvalidRefreshToken(Unauthorized):
    """The refresh token is unknown, expired, revoked or already used."""

    problem_type = _users(
        "invalid-refresh-token",
        401,
        "Invalid Refresh Token",
        "The refresh token is unknown, expired, revoked or already used (a used one also revokes "
        "the tokens rotated from the same login): log in again.",
    )

    def __init__(self) -> None:
        super().__init__("The refresh token is invalid, expired or revoked.")


class RefreshTokenReused(KeepsChanges, InvalidRefreshToken):
    """A used refresh token came back: its family was revoked (same answer as an invalid one)."""


class UserNotFound(NotFound):
    """No such user, or one the caller may not see."""

    problem_type = _users(
        "user-not-found",
        404,
        "User Not Found",
        "No such user, or one the caller may not see (exactly like a missing one); a `service` "
        "token has no account.",
    )

    def __init__(self) -> None:
        super().__init__("The user does not exist.")


class RefreshTokenNotFound(NotFound):
    """The refresh token is not one of the caller's."""

    problem_type = _users(
        "refresh-token-not-found",
        404,
        "Refresh Token Not Found",
        "The refresh token is not one of the caller's.",
    )

    def __init__(self) -> None:
        super().__init__("The refresh token is not one of yours.")


class WrongCurrentPassword(Forbidden):
    """A password change whose ``current_password`` is wrong (no challenge: the access token is
    fine)."""

    problem_type = _users(
        "wrong-current-password",
        403,
        "Wrong Current Password",
        "A password change whose `current_password` is not the account's password.",
    )

    def __init__(self) -> None:
        super().__init__("The current password is not correct.")


class UnknownProviderState(UnprocessableContent):
    """The pact verifier asked for a provider state this service does not know (contract tests)."""

    def __init__(self, state: str, *, known: list[str]) -> None:
        super().__init__(f"Unknown provider state {state!r}.", extra={"known_states": known})


class ProviderStateUnmet(Conflict):
    """A provider state does not hold and cannot be set up here (contract tests)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)


PROBLEM_TYPES: tuple[ProblemType | type[ProblemError], ...] = (
    *BEARER_AUTH_PROBLEM_TYPES,
    INVALID_CURSOR,
    RATE_LIMITED,
    EmailAlreadyRegistered,
    InvalidCredentials,
    InvalidClientCredentials,
    InvalidRefreshToken,
    UserNotFound,
    RefreshTokenNotFound,
    WrongCurrentPassword,
)
"""What the app answers beyond what every service app does (``create_service_app``'s
``problem_types``): the bearer challenges, a bad cursor, the failed-login limit, and its own."""
