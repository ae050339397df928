"""The problem+json body every error answers with, and the OpenAPI entries that document it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from common_libs.problems import PROBLEM_CONTENT_TYPE
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

__all__ = ["Problem", "install_problem_schema", "problem_responses"]

_DESCRIPTIONS = {
    400: "The body is not JSON text.",
    401: "Missing, invalid or expired access token (`WWW-Authenticate: Bearer`).",
    403: "The caller's role may not perform this operation.",
    404: "No such resource.",
    409: "The request conflicts with the current state.",
    422: "The request is not valid (`errors` lists what is wrong).",
    503: "The token issuer's keys cannot be fetched right now (`Retry-After`).",
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
    *statuses: int, descriptions: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for ``statuses``, each a problem+json body."""
    overrides = descriptions or {}
    return {
        status: {
            "description": overrides.get(status, _DESCRIPTIONS[status]),
            "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


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
