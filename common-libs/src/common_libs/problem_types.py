"""The fleet's problem types: stable ``type`` URIs a client can tell errors apart by.

Every type is named ``urn:fleet:<scope>:<name>``. The shared ones (scope ``common``) are defined
here, once, for every service and the gateway; a service names its own domain types under its
scope (``urn:fleet:orders:out-of-stock``) on its :class:`~common_libs.errors.ProblemError`
subclasses, and passes them (or the classes) to ``create_service_app(problem_types=...)`` so that
its OpenAPI document lists them. ``about:blank`` is kept for the plain statuses 405 and 500.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ABOUT_BLANK",
    "AUTHENTICATION_REQUIRED",
    "BEARER_AUTH_PROBLEM_TYPES",
    "CONTENT_TOO_LARGE",
    "IDEMPOTENCY_KEY_IN_FLIGHT",
    "IDEMPOTENCY_KEY_MISSING",
    "IDEMPOTENCY_KEY_PROBLEM_TYPES",
    "IDEMPOTENCY_KEY_REUSED",
    "INSUFFICIENT_SCOPE",
    "INVALID_CURSOR",
    "INVALID_TOKEN",
    "MALFORMED_REQUEST",
    "NOT_FOUND",
    "RATE_LIMITED",
    "SERVICE_APP_PROBLEM_TYPES",
    "SERVICE_UNAVAILABLE",
    "SHARED_PROBLEM_TYPES",
    "TOKEN_EXPIRED",
    "UPSTREAM_FAILED",
    "UPSTREAM_TIMEOUT",
    "VALIDATION_FAILED",
    "ProblemType",
]

# The titles of the types that mean what their status says are the status' reason phrase (the
# gateway's own answers say the same); the others name what went wrong.

ABOUT_BLANK = "about:blank"
"""RFC 9457's type of a problem that says no more than its status (only 405 and 500 here)."""

_URN = re.compile(r"^urn:fleet:[a-z][a-z0-9-]*:[a-z][a-z0-9-]*$")


@dataclass(frozen=True, slots=True)
class ProblemType:
    """One kind of problem: its ``type`` URI, HTTP ``status``, ``title`` and what it means."""

    type: str
    status: int
    title: str
    description: str

    def __post_init__(self) -> None:
        if self.type != ABOUT_BLANK and not _URN.fullmatch(self.type):
            raise ValueError(f"a problem type is urn:fleet:<scope>:<name>, not {self.type!r}")
        if not 400 <= self.status <= 599:
            raise ValueError(f"a problem's status is 400..599, not {self.status}")
        if not self.title.strip():
            raise ValueError(f"problem type {self.type} has no title")

    def as_openapi(self) -> dict[str, Any]:
        """The entry of the OpenAPI document's ``x-problem-types`` catalogue."""
        return {
            "type": self.type,
            "status": self.status,
            "title": self.title,
            "description": self.description,
        }


def _common(name: str, status: int, title: str, description: str) -> ProblemType:
    return ProblemType(f"urn:fleet:common:{name}", status, title, description)


MALFORMED_REQUEST = _common(
    "malformed-request",
    400,
    "Bad Request",
    "The request cannot be read (for example a body that is not what the operation parses).",
)
AUTHENTICATION_REQUIRED = _common(
    "authentication-required",
    401,
    "Authentication Required",
    "No credentials were sent: send `Authorization: Bearer <access token>` "
    "(`WWW-Authenticate: Bearer`).",
)
INVALID_TOKEN = _common(
    "invalid-token",
    401,
    "Invalid Token",
    "The access token is malformed, not signed by a known key, has wrong claims, or its account "
    'no longer exists; get a new one (`WWW-Authenticate: Bearer error="invalid_token"`).',
)
TOKEN_EXPIRED = _common(
    "token-expired",
    401,
    "Token Expired",
    "The access token expired: refresh it and try again "
    '(`WWW-Authenticate: Bearer error="invalid_token", '
    'error_description="The access token expired"`).',
)
INSUFFICIENT_SCOPE = _common(
    "insufficient-scope",
    403,
    "Insufficient Scope",
    "The caller's role may not perform this operation "
    '(`WWW-Authenticate: Bearer error="insufficient_scope"`).',
)
NOT_FOUND = _common(
    "not-found",
    404,
    "Not Found",
    "No such resource or route (or it belongs to someone else).",
)
CONTENT_TOO_LARGE = _common(
    "content-too-large",
    413,
    "Content Too Large",
    "The request body is larger than allowed.",
)
VALIDATION_FAILED = _common(
    "validation-failed",
    422,
    "Unprocessable Content",
    "The request is not valid: `errors` lists each problem as `{loc, msg, type}` "
    "(including text that cannot be stored).",
)
INVALID_CURSOR = _common(
    "invalid-cursor",
    422,
    "Invalid Cursor",
    "The pagination cursor is not one from a previous page; start again without it.",
)
RATE_LIMITED = _common(
    "rate-limited",
    429,
    "Too Many Requests",
    "A rate limit was reached: `Retry-After` says when to try again, `RateLimit-Policy` and "
    "`RateLimit` describe the limit.",
)
IDEMPOTENCY_KEY_MISSING = _common(
    "idempotency-key-missing",
    400,
    "Idempotency Key Missing",
    "The operation requires an `Idempotency-Key` header.",
)
IDEMPOTENCY_KEY_IN_FLIGHT = _common(
    "idempotency-key-in-flight",
    409,
    "Idempotency Key In Flight",
    "The first request with this `Idempotency-Key` is still being processed; retry after "
    "`Retry-After` seconds.",
)
IDEMPOTENCY_KEY_REUSED = _common(
    "idempotency-key-reused",
    422,
    "Idempotency Key Reused",
    "This `Idempotency-Key` was already used with a different request body.",
)
SERVICE_UNAVAILABLE = _common(
    "service-unavailable",
    503,
    "Service Unavailable",
    "The service or one of its dependencies (database, key set, ...) is unavailable right now; "
    "`Retry-After` says when to try again.",
)
UPSTREAM_FAILED = _common(
    "upstream-failed",
    502,
    "Bad Gateway",
    "A service behind this one answered with an error or could not be reached.",
)
UPSTREAM_TIMEOUT = _common(
    "upstream-timeout",
    504,
    "Gateway Timeout",
    "A service behind this one did not answer in time.",
)

SHARED_PROBLEM_TYPES: tuple[ProblemType, ...] = (
    MALFORMED_REQUEST,
    AUTHENTICATION_REQUIRED,
    INVALID_TOKEN,
    TOKEN_EXPIRED,
    INSUFFICIENT_SCOPE,
    NOT_FOUND,
    CONTENT_TOO_LARGE,
    VALIDATION_FAILED,
    INVALID_CURSOR,
    RATE_LIMITED,
    IDEMPOTENCY_KEY_MISSING,
    IDEMPOTENCY_KEY_IN_FLIGHT,
    IDEMPOTENCY_KEY_REUSED,
    SERVICE_UNAVAILABLE,
    UPSTREAM_FAILED,
    UPSTREAM_TIMEOUT,
)
"""Every shared type, in the order of the fleet's table."""

SERVICE_APP_PROBLEM_TYPES: tuple[ProblemType, ...] = (
    MALFORMED_REQUEST,
    NOT_FOUND,
    VALIDATION_FAILED,
    SERVICE_UNAVAILABLE,
)
"""What every app of ``create_service_app`` can answer by itself: an unreadable body, an unknown
route, invalid input, a lost database."""

BEARER_AUTH_PROBLEM_TYPES: tuple[ProblemType, ...] = (
    AUTHENTICATION_REQUIRED,
    INVALID_TOKEN,
    TOKEN_EXPIRED,
    INSUFFICIENT_SCOPE,
)
"""What :mod:`common_libs.auth`'s dependencies answer (401 and 403)."""

IDEMPOTENCY_KEY_PROBLEM_TYPES: tuple[ProblemType, ...] = (
    IDEMPOTENCY_KEY_MISSING,
    IDEMPOTENCY_KEY_IN_FLIGHT,
    IDEMPOTENCY_KEY_REUSED,
)
"""What an operation that requires an ``Idempotency-Key`` answers about the key."""
