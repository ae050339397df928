"""A stub of product-catalog-service's public product list, for the read model's initial fill.

``GET /products?limit=&cursor=`` answers ``{items: [product...], next_cursor}`` (API.md's cursor
paging; the cursor is opaque to the service) where a product is ``{id, sku, name, description,
category, price, currency, stock_available, created_at, updated_at}``. Tests set the products
and read the requests received through ``/_stub/...``: ``/_stub/mode`` makes it fail (``error``:
500), ``/_stub/hold`` makes every page request after the first ``after`` wait until
``/_stub/release`` (a fill caught in the middle). ``STUB_PRODUCTS`` (JSON) holds the products it
starts with.

Run: ``python -m uvicorn tests.support.catalog_stub:app --host 127.0.0.1 --port N``.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

STUB: dict[str, Any] = {}
_released = asyncio.Event()


def _reset(products: list[dict[str, Any]] | None = None) -> None:
    STUB.update(products=products or [], requests=[], mode="ok", hold_after=None, held=0)
    _released.clear()


_reset(json.loads(os.environ.get("STUB_PRODUCTS", "[]")))


async def list_products(request: Request) -> JSONResponse:
    limit = int(request.query_params.get("limit", "20"))
    cursor = request.query_params.get("cursor")
    STUB["requests"].append({"limit": limit, "cursor": cursor})
    if STUB["mode"] == "error":
        return JSONResponse({"title": "Internal Server Error", "status": 500}, status_code=500)
    hold_after = STUB["hold_after"]
    if hold_after is not None and len(STUB["requests"]) > hold_after:
        STUB["held"] += 1
        await _released.wait()
    start = int(cursor.removeprefix("after-")) if cursor else 0
    products = STUB["products"]
    end = start + limit
    next_cursor = f"after-{end}" if end < len(products) else None
    return JSONResponse({"items": products[start:end], "next_cursor": next_cursor})


async def set_products(request: Request) -> JSONResponse:
    STUB["products"] = await request.json()
    return JSONResponse({"ok": True})


async def set_mode(request: Request) -> JSONResponse:
    STUB["mode"] = (await request.json())["mode"]
    return JSONResponse({"ok": True})


async def hold(request: Request) -> JSONResponse:
    STUB["hold_after"] = (await request.json())["after"]
    _released.clear()
    return JSONResponse({"ok": True})


async def release(request: Request) -> JSONResponse:
    STUB["hold_after"] = None
    _released.set()
    return JSONResponse({"ok": True})


async def get_requests(request: Request) -> JSONResponse:
    return JSONResponse({"requests": STUB["requests"], "held": STUB["held"]})


async def reset(request: Request) -> JSONResponse:
    _released.set()  # a request still held answers first
    _reset()
    return JSONResponse({"ok": True})


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        Route("/products", list_products),
        Route("/_stub/products", set_products, methods=["PUT"]),
        Route("/_stub/mode", set_mode, methods=["PUT"]),
        Route("/_stub/hold", hold, methods=["PUT"]),
        Route("/_stub/release", release, methods=["POST"]),
        Route("/_stub/requests", get_requests),
        Route("/_stub/reset", reset, methods=["POST"]),
        Route("/health", health),
    ]
)
