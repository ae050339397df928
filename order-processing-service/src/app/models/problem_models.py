"""The problem+json body every error answers with, and the OpenAPI entries that document it."""

from __future__ import annotations

from typing import Any

from common_libs.problems import PROBLEM_CONTENT_TYPE
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

__all__ = ["Problem", "install_problem_schema", "problem_responses"]

_DESCRIPTIONS = {
    400: "The request is malformed (for example, the Idempotency-Key header is missing).",
    401: "Missing, invalid or expired access token (`WWW-Authenticate: Bearer`).",
    403: "The caller's role may not perform this operation.",
    404: "No such order (or it belongs to someone else).",
    409: "The request conflicts with the current state.",
    422: "The request is not valid (`errors` lists what is wrong).",
    503: "A dependency (the token issuer's keys, the catalog) is unavailable (`Retry-After`).",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}


class Problem(BaseModel):
    """An RFC 9457 problem; some problems add fields (``errors``, ``product_id``, ...)."""

    model_config = ConfigDict(extra="allow", title="Problem")

    type: str
    title: str
    status: int
    detail: str
    request_id: str | None
    errors: list[dict[str, Any]] | None = None


def problem_responses(
    *statuses: int, descriptions: dict[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for ``statuses``, each a problem+json body."""
    overrides = descriptions or {}
    entries: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {
            "description": overrides.get(status, _DESCRIPTIONS[status]),
            "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        if status == 503:
            entry["headers"] = _RETRY_AFTER
        entries[status] = entry
    return entries


def install_problem_schema(app: FastAPI) -> None:
    """Add the ``Problem`` schema that :func:`problem_responses` refers to to the app's OpenAPI."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault(
            "Problem", Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        )
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
