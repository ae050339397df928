"""Cursor pagination: opaque cursors, limit bounds, and the page envelope."""

from __future__ import annotations

import base64
import inspect
import typing
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ValidationError

from common_libs.errors import UnprocessableContent
from common_libs.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    InvalidCursor,
    Page,
    PageQuery,
    decode_cursor,
    encode_cursor,
)
from common_libs.problems import PROBLEM_CONTENT_TYPE, install_problem_handlers


class Item(BaseModel):
    id: int


def build_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/items")
    async def list_items(page: PageQuery) -> dict[str, Any]:
        return {"limit": page.limit, "cursor": page.cursor}

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(build_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def test_cursor_round_trips_its_position() -> None:
    position = {"created_at": "2026-11-26T10:00:00Z", "id": "0b4e", "n": 3}

    assert decode_cursor(encode_cursor(position)) == position


def test_cursor_is_url_safe_and_unpadded() -> None:
    cursor = encode_cursor({"id": "\u00ff" * 7})

    assert "=" not in cursor
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("@@@@", id="not-base64"),
        pytest.param("a", id="impossible-length"),
        pytest.param(b64(b"not json"), id="not-json"),
        pytest.param(b64(b"\xff\xfe"), id="not-utf8"),
        pytest.param(b64(b"[1, 2]"), id="json-list"),
        pytest.param(b64(b'"text"'), id="json-string"),
        pytest.param("caf\u00e9", id="non-ascii"),
    ],
)
def test_garbage_cursor_is_invalid(cursor: str) -> None:
    with pytest.raises(InvalidCursor) as invalid:
        decode_cursor(cursor)

    assert isinstance(invalid.value, UnprocessableContent)
    assert invalid.value.status == 422
    assert invalid.value.type == "urn:fleet:common:invalid-cursor"


async def test_list_without_parameters_uses_the_default_limit(client: httpx.AsyncClient) -> None:
    response = await client.get("/items")

    assert response.json() == {"limit": DEFAULT_PAGE_SIZE, "cursor": None}


async def test_cursor_and_limit_reach_the_handler(client: httpx.AsyncClient) -> None:
    cursor = encode_cursor({"id": 41})

    response = await client.get("/items", params={"limit": 5, "cursor": cursor})

    assert response.json() == {"limit": 5, "cursor": {"id": 41}}


async def test_empty_cursor_means_first_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/items", params={"cursor": ""})

    assert response.json()["cursor"] is None


@pytest.mark.parametrize("limit", [1, MAX_PAGE_SIZE])
async def test_limit_bounds_are_inclusive(client: httpx.AsyncClient, limit: int) -> None:
    response = await client.get("/items", params={"limit": limit})

    assert response.json()["limit"] == limit


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten"])
async def test_limit_out_of_bounds_answers_422(client: httpx.AsyncClient, limit: str) -> None:
    response = await client.get("/items", params={"limit": limit})

    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["errors"]] == [["query", "limit"]]


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("@@@@", id="garbage"),
        pytest.param(b64(b"[1]"), id="non-dict-json"),
        pytest.param("a", id="bad-base64"),
    ],
)
async def test_invalid_cursor_answers_422_problem_at_the_cursor(
    client: httpx.AsyncClient, cursor: str
) -> None:
    response = await client.get("/items", params={"cursor": cursor})

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    body = response.json()
    assert body["detail"] == "The cursor is not valid; start again without it."
    assert [error["loc"] for error in body["errors"]] == [["query", "cursor"]]


async def test_overlong_cursor_answers_422_at_the_cursor(client: httpx.AsyncClient) -> None:
    response = await client.get("/items", params={"cursor": "a" * 1025})

    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["errors"]] == [["query", "cursor"]]


def test_page_serialises_items_and_next_cursor() -> None:
    page = Page[Item](items=[Item(id=1), Item(id=2)], next_cursor="abc")

    assert page.model_dump(mode="json") == {"items": [{"id": 1}, {"id": 2}], "next_cursor": "abc"}


def test_last_page_has_a_null_next_cursor() -> None:
    assert Page[Item](items=[], next_cursor=None).model_dump_json() == (
        '{"items":[],"next_cursor":null}'
    )


def test_page_validates_its_items() -> None:
    with pytest.raises(ValidationError):
        Page[Item].model_validate({"items": [{"id": "not a number"}], "next_cursor": None})


def test_page_refuses_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        Page[Item].model_validate({"items": [], "next_cursor": None, "total": 3})


def test_page_query_dependency_runs_on_the_event_loop() -> None:
    # FastAPI runs plain-function dependencies in its thread pool: a hot list path pays for that.
    (depends,) = [meta for meta in typing.get_args(PageQuery)[1:] if hasattr(meta, "dependency")]
    assert inspect.iscoroutinefunction(depends.dependency)
