"""The problem+json body every error answers with, for the OpenAPI schema."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pydantic import BaseModel


class ProblemFieldError(BaseModel):
    """One validation error: where and what (the rejected input is never echoed)."""

    loc: list[str | int]
    msg: str
    type: str | None = None


class Problem(BaseModel):
    """An RFC 9457 problem; validation errors (422) add ``errors``."""

    type: str
    title: str
    status: int
    detail: str
    request_id: str | None
    errors: list[ProblemFieldError] | None = None


_DESCRIPTIONS = {
    400: "The body cannot be parsed (for example, it is not UTF-8).",
    401: "Missing, invalid or expired credentials (with `WWW-Authenticate: Bearer`).",
    403: "The caller's role may not do this.",
    404: "No such object, or one that belongs to someone else.",
    409: "Conflicts with existing data.",
    422: "The request is not valid; `errors` says where.",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entries that document these error statuses as problem+json."""
    return {
        status: {
            "model": Problem,
            "description": _DESCRIPTIONS.get(status, HTTPStatus(status).phrase),
        }
        for status in statuses
    }
