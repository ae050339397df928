"""A stub of product-catalog-service speaking its documented public API, for the chat's tests.

``GET /products?q=&limit=`` answers ``{items: [product...], next_cursor}`` where a product is
``{id, sku, name, description, category, price, currency, stock_available, created_at,
updated_at}``; ``q`` matches as the catalog's full-text search does (``websearch_to_tsquery``):
every word must be in the name or description, and ``or`` separates alternatives. Tests set
the products and read the queries received through ``/_stub/...``; ``/_stub/mode`` makes it fail
(``error``: 500) or stall (``slow``: no answer until the caller hangs up).

Run: ``python -m uvicorn tests.support.catalog_stub:app --host 127.0.0.1 --port N``.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

STUB: dict[str, Any] = {"products": [], "queries": [], "mode": "ok"}


def _stem(word: str) -> str:
    # A crude stand-in for PostgreSQL's English stemming: plurals match their singular.
    return word[:-1] if word.endswith("s") and len(word) > 3 else word


def _matches(product: dict[str, Any], query: str) -> bool:
    words = {_stem(word) for word in f"{product['name']} {product['description']}".lower().split()}
    alternatives = [part.split() for part in f" {query.lower()} ".split(" or ")]
    return not query.strip() or any(
        part and all(_stem(word) in words for word in part) for part in alternatives
    )


async def list_products(request: Request) -> JSONResponse:
    query = request.query_params.get("q", "")
    limit = int(request.query_params.get("limit", "20"))
    STUB["queries"].append({"q": query, "limit": limit})
    if STUB["mode"] == "error":
        return JSONResponse({"title": "Internal Server Error", "status": 500}, status_code=500)
    if STUB["mode"] == "slow":
        # Stall until the caller gives up (and hangs up).
        while (await request.receive())["type"] != "http.disconnect":
            pass
        return JSONResponse({"items": [], "next_cursor": None})
    items = [product for product in STUB["products"] if _matches(product, query)][:limit]
    return JSONResponse({"items": items, "next_cursor": None})


async def set_products(request: Request) -> JSONResponse:
    STUB["products"] = await request.json()
    return JSONResponse({"ok": True})


async def set_mode(request: Request) -> JSONResponse:
    STUB["mode"] = (await request.json())["mode"]
    return JSONResponse({"ok": True})


async def get_queries(request: Request) -> JSONResponse:
    return JSONResponse(STUB["queries"])


async def reset(request: Request) -> JSONResponse:
    STUB.update(products=[], queries=[], mode="ok")
    return JSONResponse({"ok": True})


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        Route("/products", list_products),
        Route("/_stub/products", set_products, methods=["PUT"]),
        Route("/_stub/mode", set_mode, methods=["PUT"]),
        Route("/_stub/queries", get_queries),
        Route("/_stub/reset", reset, methods=["POST"]),
        Route("/health", health),
    ]
)
