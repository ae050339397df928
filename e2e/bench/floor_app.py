"""The floor of ``GET /products/{id}``: a bare Starlette handler over an asyncpg pool.

It runs the catalog's by-id statement exactly as SQLAlchemy compiles it for asyncpg (same
columns, same condition on live rows) against the same database, and answers the same JSON
body, byte for byte in shape: ids as strings, the price as a two-place decimal string, times in
ISO 8601 with ``Z``. Nothing else: no middleware, no validation models, no logging of its own.
The pool holds up to 20 connections, as the catalog's pool does (the catalog may open 10 more
as overflow, which SQLAlchemy closes when they are returned).

Run by uvicorn exactly as the fleet runs a service (one worker, same flags), from the bench
venv, which has the catalog's pinned uvicorn, Starlette and asyncpg:

    uvicorn floor_app:create_app --factory --host 127.0.0.1 --port PORT

``BENCH_FLOOR_DATABASE_URL`` is the catalog's database (``postgresql://...``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

# The catalog's statement (product_repository._FETCH_PRODUCT, compiled for asyncpg).
FETCH_PRODUCT = (
    "SELECT products.id, products.sku, products.name, products.description, "
    "products.category, products.price, products.currency, "
    "products.stock - products.held AS stock_available, products.created_at, "
    "products.updated_at FROM products "
    "WHERE products.id = $1::UUID AND products.deleted_at IS NULL"
)


def _timestamp(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _price(value: Decimal) -> str:
    return f"{value:.2f}"


async def get_product(request: Request) -> Response:
    """One live product, or 404."""
    try:
        product_id = uuid.UUID(request.path_params["product_id"])
    except ValueError:
        return JSONResponse({"title": "Not Found", "status": 404}, status_code=404)
    row = await request.app.state.pool.fetchrow(FETCH_PRODUCT, product_id)
    if row is None:
        return JSONResponse({"title": "Not Found", "status": 404}, status_code=404)
    body: dict[str, Any] = {
        "id": str(row["id"]),
        "sku": row["sku"],
        "name": row["name"],
        "description": row["description"],
        "category": row["category"],
        "price": _price(row["price"]),
        "currency": row["currency"],
        "stock_available": row["stock_available"],
        "created_at": _timestamp(row["created_at"]),
        "updated_at": _timestamp(row["updated_at"]),
    }
    return JSONResponse(body)


async def ready(request: Request) -> Response:
    """200 once the pool answers."""
    await request.app.state.pool.fetchval("SELECT 1")
    return JSONResponse({"status": "ok"})


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """Open the pool (the service's bounds) and close it on shutdown."""
    dsn = os.environ["BENCH_FLOOR_DATABASE_URL"]
    app.state.pool = await asyncpg.create_pool(dsn, min_size=10, max_size=20)
    try:
        yield
    finally:
        await app.state.pool.close()


def create_app() -> Starlette:
    """The floor application (``--factory``)."""
    routes = [Route("/products/{product_id}", get_product), Route("/ready", ready)]
    return Starlette(routes=routes, lifespan=lifespan)
