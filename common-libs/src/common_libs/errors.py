"""Problem errors: exceptions that carry their HTTP status and render as RFC 9457 problem details.

Managers raise these (or domain subclasses such as ``class OutOfStock(Conflict)``); one handler,
installed by :func:`common_libs.problems.install_problem_handlers`, turns them into responses.

Each class has a :class:`~common_libs.problem_types.ProblemType` (``problem_type``) and its
``type``, ``status`` and ``title`` class attributes, which always agree. A subclass names its own
type either way::

    class OutOfStock(Conflict):
        \"\"\"Not enough stock for a product.\"\"\"  # the type's description

        type = "urn:fleet:orders:out-of-stock"


    class OutOfStock(Conflict):
        problem_type = OUT_OF_STOCK  # a ProblemType(type, 409, title, description)

A subclass that sets neither keeps its parent's type. Changing the status or the title of a type
without naming a new one is refused (a type means one status and one title).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from common_libs.problem_types import (
    ABOUT_BLANK,
    AUTHENTICATION_REQUIRED,
    CONTENT_TOO_LARGE,
    IDEMPOTENCY_KEY_IN_FLIGHT,
    IDEMPOTENCY_KEY_MISSING,
    IDEMPOTENCY_KEY_REUSED,
    INSUFFICIENT_SCOPE,
    INVALID_TOKEN,
    MALFORMED_REQUEST,
    NOT_FOUND,
    RATE_LIMITED,
    SERVICE_UNAVAILABLE,
    TOKEN_EXPIRED,
    UPSTREAM_FAILED,
    UPSTREAM_TIMEOUT,
    ProblemType,
)

__all__ = [
    "AuthenticationRequired",
    "BadGateway",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "GatewayTimeout",
    "IdempotencyKeyInFlight",
    "IdempotencyKeyMissing",
    "IdempotencyKeyReused",
    "InsufficientScope",
    "InvalidToken",
    "NotFound",
    "PayloadTooLarge",
    "ProblemError",
    "ServiceUnavailable",
    "TokenExpired",
    "TooManyRequests",
    "Unauthorized",
    "UnprocessableContent",
    "bearer_challenge",
]


class ProblemError(Exception):
    """Base of every error that becomes a problem+json response."""

    problem_type: ClassVar[ProblemType] = ProblemType(
        ABOUT_BLANK, 500, "Internal Server Error", "An unexpected error."
    )
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal Server Error"
    type: ClassVar[str] = ABOUT_BLANK

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if _DECLARING.isdisjoint(vars(cls)):
            # Nothing of its own: all four resolve along the MRO to the same declaring class
            # (a mix-in base first, such as ``class OutOfStock(OrderRefused, Conflict)``).
            return
        cls.problem_type = _own_problem_type(cls)
        cls.type = cls.problem_type.type
        cls.status = cls.problem_type.status
        cls.title = cls.problem_type.title

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.detail = detail if detail is not None else self.title
        self.headers: dict[str, str] = dict(headers or {})
        self.extra: dict[str, Any] = dict(extra or {})
        super().__init__(self.detail)


_DECLARING = frozenset({"problem_type", "type", "status", "title"})


def _own_problem_type(cls: type[ProblemError]) -> ProblemType:
    """The problem type of a new ``cls`` that declares something: its ``problem_type``, or one
    made of its ``type``, ``status`` and ``title`` (its own or inherited) and its docstring."""
    own = vars(cls)
    declared = own.get("problem_type")
    if declared is not None:
        for name in ("type", "status", "title"):
            if name in own and own[name] != getattr(declared, name):
                raise TypeError(f"{cls.__name__}.{name} disagrees with its problem_type")
        return declared  # type: ignore[no-any-return]
    inherited = cls.problem_type  # the nearest declaring base's
    made = ProblemType(cls.type, cls.status, cls.title, _description(cls, inherited))
    if made.type == inherited.type and (made.status, made.title) == (
        inherited.status,
        inherited.title,
    ):
        return inherited
    if made.type == inherited.type != ABOUT_BLANK:
        raise TypeError(
            f"{cls.__name__} changes the status or title of {made.type}: give it its own type"
        )
    return made


def _description(cls: type, inherited: ProblemType) -> str:
    """The first paragraph of ``cls``' own docstring (in Markdown), or the inherited description."""
    doc = vars(cls).get("__doc__")
    if not doc or not doc.strip():
        return inherited.description
    # Markdown, as OpenAPI descriptions are: reStructuredText's ``literal`` becomes `literal`.
    return " ".join(doc.strip().split("\n\n", 1)[0].split()).replace("``", "`")


# RFC 6750, 3: error_description is %x20-21 / %x23-5B / %x5D-7E (printable ASCII but " and \).
_NOT_IN_QUOTED_VALUE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


def bearer_challenge(error: str | None = None, description: str | None = None) -> str:
    """A ``WWW-Authenticate`` value of the Bearer scheme (RFC 6750, 3): bare, or with ``error``
    and ``error_description`` (characters RFC 6750 forbids in it are replaced)."""
    if error is None:
        return "Bearer"
    challenge = f'Bearer error="{_NOT_IN_QUOTED_VALUE.sub("", error)}"'
    if description:
        text = _NOT_IN_QUOTED_VALUE.sub("", description.replace('"', "'"))
        challenge += f', error_description="{text}"'
    return challenge


class BadRequest(ProblemError):
    """The request is malformed in a way validation cannot express (400)."""

    problem_type = MALFORMED_REQUEST


class Unauthorized(ProblemError):
    """No or unusable credentials (401, with a Bearer challenge).

    Its own type is ``authentication-required`` (no credentials sent) with the bare challenge;
    :class:`InvalidToken` and :class:`TokenExpired` carry ``error="invalid_token"``.
    """

    problem_type = AUTHENTICATION_REQUIRED

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail, headers=headers, extra=extra)
        self.headers = {"WWW-Authenticate": self.challenge(), **self.headers}

    def challenge(self) -> str:
        """The ``WWW-Authenticate`` value this answer carries."""
        return bearer_challenge()


class AuthenticationRequired(Unauthorized):
    """No credentials were sent (401, bare ``WWW-Authenticate: Bearer``)."""

    def __init__(
        self,
        detail: str = "A bearer access token is required.",
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail, headers=headers)


class InvalidToken(Unauthorized):
    """The access token cannot be accepted (401, ``error="invalid_token"``; ``detail`` is the
    ``error_description``)."""

    problem_type = INVALID_TOKEN

    def __init__(
        self,
        detail: str = "The access token is invalid.",
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail, headers=headers)

    def challenge(self) -> str:
        """``Bearer error="invalid_token", error_description="<detail>"``."""
        return bearer_challenge("invalid_token", self.detail)


_EXPIRED = "The access token expired"


class TokenExpired(InvalidToken):
    """The access token expired: refresh it (401, ``error="invalid_token"``,
    ``error_description="The access token expired"``)."""

    problem_type = TOKEN_EXPIRED

    def __init__(
        self,
        detail: str = "The access token expired.",
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail, headers=headers)

    def challenge(self) -> str:
        """``Bearer error="invalid_token", error_description="The access token expired"``."""
        return bearer_challenge("invalid_token", _EXPIRED)


class Forbidden(ProblemError):
    """Authenticated, but the caller's role may not do this (403).

    With its own type, ``insufficient-scope``, the answer carries
    ``WWW-Authenticate: Bearer error="insufficient_scope"``; a subclass with a type of its own
    (a wrong current password, say) carries no challenge.
    """

    problem_type = INSUFFICIENT_SCOPE

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail, headers=headers, extra=extra)
        if self.type == INSUFFICIENT_SCOPE.type:
            challenge = bearer_challenge("insufficient_scope", self.detail)
            self.headers = {"WWW-Authenticate": challenge, **self.headers}


class InsufficientScope(Forbidden):
    """The caller's role may not do this (403, ``error="insufficient_scope"``)."""

    def __init__(
        self,
        detail: str = "Your role may not perform this operation.",
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail, headers=headers)


class NotFound(ProblemError):
    """The resource does not exist, or belongs to someone else (404)."""

    problem_type = NOT_FOUND


class Conflict(ProblemError):
    """The request conflicts with the current state of the resource (409); a subclass names
    what conflicts with its own type."""

    status = 409
    title = "Conflict"


class PayloadTooLarge(ProblemError):
    """The request content is larger than the server will process (413)."""

    problem_type = CONTENT_TOO_LARGE


class UnprocessableContent(ProblemError):
    """Well-formed but semantically invalid input (422); a subclass names what is invalid with
    its own type (the validation problem is :func:`common_libs.problems.validation_problem`)."""

    status = 422
    title = "Unprocessable Content"


class _RetryableError(ProblemError):
    """A problem that tells the client when to try again with ``Retry-After``."""

    def __init__(
        self,
        detail: str | None = None,
        *,
        retry_after: int | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        merged = dict(headers or {})
        if retry_after is not None:
            merged["Retry-After"] = str(max(0, int(retry_after)))
        super().__init__(detail, headers=merged, extra=extra)


class TooManyRequests(_RetryableError):
    """A rate limit or quota was exceeded (429)."""

    problem_type = RATE_LIMITED


class BadGateway(ProblemError):
    """An upstream dependency answered with an error or could not be reached (502)."""

    problem_type = UPSTREAM_FAILED


class ServiceUnavailable(_RetryableError):
    """A dependency is down or not configured; try again later (503)."""

    problem_type = SERVICE_UNAVAILABLE


class GatewayTimeout(ProblemError):
    """An upstream dependency did not answer in time (504)."""

    problem_type = UPSTREAM_TIMEOUT


class IdempotencyKeyMissing(BadRequest):
    """The operation requires an ``Idempotency-Key`` header (400)."""

    problem_type = IDEMPOTENCY_KEY_MISSING

    def __init__(
        self, detail: str = "The Idempotency-Key header is required (1..255 characters)."
    ) -> None:
        super().__init__(detail)


class IdempotencyKeyInFlight(_RetryableError, Conflict):
    """The first request with this ``Idempotency-Key`` is still being processed (409, with
    ``Retry-After``)."""

    problem_type = IDEMPOTENCY_KEY_IN_FLIGHT

    def __init__(
        self,
        detail: str = "A request with this Idempotency-Key is still being processed; "
        "retry shortly.",
        *,
        retry_after: int = 1,
    ) -> None:
        super().__init__(detail, retry_after=retry_after)


class IdempotencyKeyReused(UnprocessableContent):
    """The ``Idempotency-Key`` was already used with a different request body (422)."""

    problem_type = IDEMPOTENCY_KEY_REUSED

    def __init__(
        self,
        detail: str = "This Idempotency-Key was already used with a different request body.",
    ) -> None:
        super().__init__(detail)
