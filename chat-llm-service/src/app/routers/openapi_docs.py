"""OpenAPI descriptions of the problem answers, so that the schema tells the truth."""

from __future__ import annotations

from typing import Any

__all__ = ["problems"]

_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "request_id": {"type": ["string", "null"]},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                    "type": {"type": ["string", "null"]},
                },
            },
        },
    },
}

_DESCRIPTIONS = {
    400: "The body cannot be read (not UTF-8 JSON).",
    401: "Missing, invalid or expired access token.",
    404: "No such conversation (or it belongs to someone else).",
    413: "The message (or an embedding input) does not fit the model.",
    422: "The request is not valid; see errors.",
    429: "The daily token quota is used up, or the language model API rate-limits us.",
    502: "The language model API failed or cannot be reached.",
    503: "No language model API is configured (the detail says how), or the token issuer's "
    "keys cannot be fetched.",
    504: "The language model API did not answer within the configured timeout.",
}

_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "string"},
    }
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for problem+json answers with these statuses."""
    entries: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {
            "description": _DESCRIPTIONS[status],
            "content": {"application/problem+json": {"schema": _PROBLEM_SCHEMA}},
        }
        if status in (429, 503):
            entry["headers"] = _RETRY_AFTER
        entries[status] = entry
    return entries
