"""Domain errors: each carries its HTTP status; common-libs renders them as problem+json."""

from __future__ import annotations

from collections.abc import Mapping

from common_libs.errors import Conflict, Forbidden, NotFound, Unauthorized, UnprocessableContent

from app.db.session import KeepsChanges


class EmailAlreadyRegistered(Conflict):
    """Another account has this email (compared case-insensitively)."""

    def __init__(self) -> None:
        super().__init__("An account with this email already exists.")


class InvalidCredentials(Unauthorized):
    """Unknown email or wrong password: one answer for both (``headers``: the login limit's)."""

    def __init__(self, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__("The email or password is incorrect.", headers=headers)


class InvalidClientCredentials(Unauthorized):
    """Unknown client or wrong client secret: one answer for both."""

    def __init__(self) -> None:
        super().__init__("The client credentials are incorrect.")


class InvalidRefreshToken(Unauthorized):
    """The refresh token is unknown, expired, revoked or already used."""

    def __init__(self) -> None:
        super().__init__("The refresh token is invalid, expired or revoked.")


class RefreshTokenReused(KeepsChanges, InvalidRefreshToken):
    """A used refresh token came back: its family was revoked (same answer as an invalid one)."""


class UserNotFound(NotFound):
    """No such user, or one the caller may not see."""

    def __init__(self) -> None:
        super().__init__("The user does not exist.")


class RefreshTokenNotFound(NotFound):
    """The refresh token is not one of the caller's."""

    def __init__(self) -> None:
        super().__init__("The refresh token is not one of yours.")


class WrongCurrentPassword(Forbidden):
    """A password change whose ``current_password`` is wrong."""

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
