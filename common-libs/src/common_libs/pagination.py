"""Cursor pagination: the ``{items, next_cursor}`` envelope, query parameters, opaque cursors."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, ConfigDict

from common_libs.errors import UnprocessableContent
from common_libs.problem_types import INVALID_CURSOR

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "InvalidCursor",
    "Page",
    "PageParams",
    "PageQuery",
    "decode_cursor",
    "encode_cursor",
]

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
_MAX_CURSOR_LENGTH = 1024


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list; ``next_cursor`` is null on the last page."""

    model_config = ConfigDict(extra="forbid")

    items: list[T]
    next_cursor: str | None


class InvalidCursor(UnprocessableContent):
    """The cursor was not produced by this API (or was altered)."""

    problem_type = INVALID_CURSOR

    def __init__(self) -> None:
        super().__init__(
            "The cursor is not valid; start again without it.",
            extra={
                "errors": [{"loc": ["query", "cursor"], "msg": "Invalid cursor", "type": "cursor"}]
            },
        )


def encode_cursor(position: dict[str, Any]) -> str:
    """Pack a keyset position into an opaque, URL-safe string."""
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> dict[str, Any]:
    """Unpack a cursor made by :func:`encode_cursor`, or raise InvalidCursor."""
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        position = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise InvalidCursor from exc
    if not isinstance(position, dict):
        raise InvalidCursor
    return position


@dataclass(frozen=True, slots=True)
class PageParams:
    """The ``limit`` and decoded ``cursor`` of a list request."""

    limit: int
    cursor: dict[str, Any] | None


async def _page_params(
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size (1..100).")
    ] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None,
        Query(max_length=_MAX_CURSOR_LENGTH, description="Opaque cursor from the previous page."),
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=decode_cursor(cursor) if cursor else None)


# An async dependency on purpose: FastAPI runs plain functions in its thread pool, which costs
# far more than parsing two query parameters.
PageQuery = Annotated[PageParams, Depends(_page_params)]
