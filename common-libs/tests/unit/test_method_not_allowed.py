"""A 405 answer names, in ``Allow``, every method that some route serves at the path."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI, WebSocket
from starlette.requests import Request
from starlette.responses import PlainTextResponse

from common_libs.problems import PROBLEM_CONTENT_TYPE, install_problem_handlers


def build_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    items = APIRouter(prefix="/items")

    @items.get("")
    async def list_items() -> list[str]:
        return []

    @items.post("", status_code=201)
    async def add_item() -> None:
        return None

    @items.get("/{item_id:int}")
    async def get_item(item_id: int) -> int:
        return item_id

    @items.patch("/{item_id:int}")
    async def change_item(item_id: int) -> int:
        return item_id

    @items.put("/{name}")
    async def put_named_item(name: str) -> str:
        return name

    app.include_router(items)

    @app.websocket("/items")
    async def item_feed(websocket: WebSocket) -> None:
        await websocket.close()

    async def plain(request: Request) -> PlainTextResponse:
        return PlainTextResponse("plain")

    # A Starlette route serves HEAD along with GET; a FastAPI route does not.
    app.add_route("/plain", plain, methods=["GET"])
    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(build_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_405_lists_the_methods_of_every_route_at_the_path(
    client: httpx.AsyncClient,
) -> None:
    response = await client.delete("/items")

    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, POST"
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert response.json()["title"] == "Method Not Allowed"
    assert response.json()["detail"].startswith("DELETE is not allowed here")


async def test_405_lists_only_routes_whose_path_parameters_match(
    client: httpx.AsyncClient,
) -> None:
    by_number = await client.delete("/items/7")
    by_name = await client.delete("/items/seven")

    # /items/7 also matches PUT /items/{name}; /items/seven is no int for the other two.
    assert by_number.headers["Allow"] == "GET, PATCH, PUT"
    assert by_name.headers["Allow"] == "PUT"


async def test_405_omits_head_where_fastapi_does_not_serve_it(client: httpx.AsyncClient) -> None:
    response = await client.head("/items")

    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, POST"


async def test_405_lists_head_where_a_route_serves_it(client: httpx.AsyncClient) -> None:
    served = await client.head("/plain")
    refused = await client.post("/plain")

    assert served.status_code == 200
    assert refused.headers["Allow"] == "GET, HEAD"


async def test_405_behind_a_root_path_matches_the_routes_path() -> None:
    transport = httpx.ASGITransport(build_app(), root_path="/api")
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.delete("/api/items")

    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, POST"
