"""What every answer of the gateway must look like: security headers, problem+json, no versions."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from support.raw_http import RawResponse

__all__ = [
    "PROBLEM_TYPES",
    "SECURITY_HEADERS",
    "assert_no_server_details",
    "assert_problem",
    "assert_security_headers",
]

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "referrer-policy": "no-referrer",
    "cross-origin-resource-policy": "same-origin",
    "strict-transport-security": "max-age=31536000",
}

# The fleet's shared problem types that the gateway's own answers carry (docs/API.md, "Gateway");
# any other status is about:blank.
PROBLEM_TYPES = {
    400: "urn:fleet:common:malformed-request",
    404: "urn:fleet:common:not-found",
    413: "urn:fleet:common:content-too-large",
    429: "urn:fleet:common:rate-limited",
    502: "urn:fleet:common:upstream-failed",
    503: "urn:fleet:common:service-unavailable",
    504: "urn:fleet:common:upstream-timeout",
}
# The gateway's answers that the public document adds to every operation, by status as a response
# key (413 only to operations with a body).
OPERATION_PROBLEM_TYPES = {
    str(status): PROBLEM_TYPES[status] for status in (413, 429, 502, 503, 504)
}

_VERSION = re.compile(r"\d+\.\d+")


def _values(headers: Iterable[tuple[str, str]], name: str) -> list[str]:
    return [value for key, value in headers if key.lower() == name]


def assert_security_headers(headers: Iterable[tuple[str, str]]) -> None:
    """Each security header is present exactly once, with the gateway's value."""
    pairs = list(headers)
    for name, expected in SECURITY_HEADERS.items():
        assert _values(pairs, name) == [expected], f"{name}: {_values(pairs, name)}"
    assert len(_values(pairs, "x-request-id")) == 1
    assert_no_server_details(pairs)


def assert_no_server_details(headers: Iterable[tuple[str, str]], body: bytes = b"") -> None:
    """The Server header is a bare "nginx"; no version, upstream server or framework leaks."""
    pairs = list(headers)
    assert _values(pairs, "server") == ["nginx"]
    assert _values(pairs, "x-powered-by") == []
    for name, value in pairs:
        if name.lower() in {"server", "via", "x-powered-by"}:
            assert not _VERSION.search(value), f"{name}: {value}"
        assert "uvicorn" not in value.lower(), f"{name}: {value}"
    assert b"nginx" not in body.lower()


def assert_problem(
    status: int,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    *,
    expected_status: int,
    title: str,
) -> dict[str, Any]:
    """The answer is the gateway's problem+json for ``expected_status``; return its body."""
    pairs = list(headers)
    assert status == expected_status
    assert _values(pairs, "content-type") == ["application/problem+json"]
    problem: dict[str, Any] = json.loads(body)
    assert set(problem) == {"type", "title", "status", "detail", "request_id"}
    assert problem["type"] == PROBLEM_TYPES.get(expected_status, "about:blank")
    assert problem["title"] == title
    assert problem["status"] == expected_status
    assert problem["detail"]
    assert problem["request_id"] == _values(pairs, "x-request-id")[0]
    assert_security_headers(pairs)
    assert_no_server_details(pairs, body)
    return problem


def assert_get_and_head_only(response: RawResponse) -> None:
    """Another method on a GET-only location: 405 problem+json with ``Allow: GET, HEAD``."""
    assert_problem(
        response.status,
        response.headers,
        response.body,
        expected_status=405,
        title="Method Not Allowed",
    )
    assert response.header("allow") == "GET, HEAD"
