"""The problem+json answer of the test stand-ins for the catalog and user-service."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse


def problem(
    status: int,
    type_: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """An RFC 9457 answer as the real services send it (without a request id)."""
    body = {"type": type_, "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(
        body, status_code=status, headers=headers, media_type="application/problem+json"
    )
