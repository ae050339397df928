"""Problem errors: exceptions that carry their HTTP status and render as RFC 9457 problem details.

Managers raise these (or domain subclasses such as ``class OutOfStock(Conflict)``); one handler,
installed by :func:`common_libs.problems.install_problem_handlers`, turns them into responses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = [
    "BadGateway",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "GatewayTimeout",
    "NotFound",
    "PayloadTooLarge",
    "ProblemError",
    "ServiceUnavailable",
    "TooManyRequests",
    "Unauthorized",
    "UnprocessableContent",
]


class ProblemError(Exception):
    """Base of every error that becomes a problem+json response."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal Server Error"
    type: ClassVar[str] = "about:blank"

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


class BadRequest(ProblemError):
    """The request is malformed in a way validation cannot express (400)."""

    status = 400
    title = "Bad Request"


class Unauthorized(ProblemError):
    """Missing, invalid or expired credentials (401, with a Bearer challenge)."""

    status = 401
    title = "Unauthorized"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            detail, headers={"WWW-Authenticate": "Bearer", **(headers or {})}, extra=extra
        )


class Forbidden(ProblemError):
    """Authenticated, but the caller's role may not do this (403)."""

    status = 403
    title = "Forbidden"


class NotFound(ProblemError):
    """The resource does not exist, or belongs to someone else (404)."""

    status = 404
    title = "Not Found"


class Conflict(ProblemError):
    """The request conflicts with the current state of the resource (409)."""

    status = 409
    title = "Conflict"


class PayloadTooLarge(ProblemError):
    """The request content is larger than the server will process (413)."""

    status = 413
    title = "Content Too Large"


class UnprocessableContent(ProblemError):
    """Well-formed but semantically invalid input (422)."""

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

    status = 429
    title = "Too Many Requests"


class BadGateway(ProblemError):
    """An upstream dependency answered with an error (502)."""

    status = 502
    title = "Bad Gateway"


class ServiceUnavailable(_RetryableError):
    """A dependency is down or not configured; try again later (503)."""

    status = 503
    title = "Service Unavailable"


class GatewayTimeout(ProblemError):
    """An upstream dependency did not answer in time (504)."""

    status = 504
    title = "Gateway Timeout"
