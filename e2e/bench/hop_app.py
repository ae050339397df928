"""One inter-service hop, against the same answer made locally, in one FastAPI process.

- ``GET /hop/products/{id}`` calls the catalog's ``GET /products/{id}`` through the client every
  service uses for its peers (``common_libs.http_client.create_http_client``: httpx's API on the
  aiohttp transport, one long-lived client made in the lifespan), parses the JSON and returns it.
- ``GET /local/products/{id}`` returns the same dict from memory (fetched once at start-up
  through the same client).

Both are the same kind of FastAPI route returning the same dict, so the only difference between
them is the hop: the client's request and response handling, the catalog's own work for the
answer (its middleware, its database read, its serialisation) and the loopback round trip.

Run by uvicorn as the fleet runs a service (one worker, same flags), from the bench venv:

    uvicorn hop_app:create_app --factory --host 127.0.0.1 --port PORT

``BENCH_HOP_CATALOG_URL`` is the catalog, ``BENCH_HOP_PRODUCT_IDS`` the ids (comma-separated)
to keep in memory.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from common_libs.http_client import create_http_client
from fastapi import FastAPI, HTTPException, Request


async def hop(product_id: str, request: Request) -> Any:
    """The product, asked of the catalog over HTTP."""
    response = await request.app.state.catalog.get(f"/products/{product_id}")
    if response.status_code != 200:
        raise HTTPException(status_code=502, detail=f"the catalog answered {response.status_code}")
    return response.json()


async def local(product_id: str, request: Request) -> Any:
    """The same product, from memory."""
    products: dict[str, Any] = request.app.state.products
    if product_id not in products:
        raise HTTPException(status_code=404)
    return products[product_id]


async def ready() -> dict[str, str]:
    """200 once the lifespan has run."""
    return {"status": "ok"}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Make the catalog client and fill the in-memory copy; close the client on shutdown."""
    catalog = create_http_client(base_url=os.environ["BENCH_HOP_CATALOG_URL"], timeout=10.0)
    app.state.catalog = catalog
    app.state.products = {}
    try:
        for product_id in os.environ["BENCH_HOP_PRODUCT_IDS"].split(","):
            response = await catalog.get(f"/products/{product_id}")
            response.raise_for_status()
            app.state.products[product_id] = response.json()
        yield
    finally:
        await catalog.aclose()


def create_app() -> FastAPI:
    """The hop application (``--factory``)."""
    app = FastAPI(lifespan=lifespan, openapi_url=None)
    app.add_api_route("/hop/products/{product_id}", hop, methods=["GET"])
    app.add_api_route("/local/products/{product_id}", local, methods=["GET"])
    app.add_api_route("/ready", ready, methods=["GET"])
    return app
