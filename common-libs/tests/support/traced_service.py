"""A service built with create_service_app, for the tracing tests (``traced_service:create_app``).

``GET /orders/{order_id}`` logs a line, runs one statement when ``DATABASE_URL`` is set and calls
``PEER_URL``'s ``/stock/{order_id}`` when it is set, answering with what the peer answered.
``GET /stock/{sku}`` answers with the headers it received. Two processes of it, one the other's
peer, make a trace across processes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from sqlalchemy import text

from common_libs.db import create_engine
from common_libs.http_client import create_http_client
from common_libs.service_app import create_service_app

_logger = logging.getLogger("traced_service")


@dataclass(frozen=True)
class Settings:
    log_level: str = "INFO"
    log_json: bool = True


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    peer_url, database_url = os.environ.get("PEER_URL"), os.environ.get("DATABASE_URL")
    app.state.peer = create_http_client(base_url=peer_url) if peer_url else None
    app.state.engine = create_engine(database_url) if database_url else None
    yield
    if app.state.peer is not None:
        await app.state.peer.aclose()
    if app.state.engine is not None:
        await app.state.engine.dispose()


def create_app() -> FastAPI:
    app = create_service_app(
        name="traced-service",
        version="3.2.1",
        summary="A service whose requests are traced.",
        lifespan=lifespan,
        settings=Settings(),
        ready_checks={},
    )

    @app.get("/orders/{order_id}")
    async def get_order(order_id: str, request: Request) -> dict[str, Any]:
        _logger.info("handling order %s", order_id)
        if request.app.state.engine is not None:
            async with request.app.state.engine.connect() as connection:
                await connection.execute(text("SELECT :order_id AS id"), {"order_id": order_id})
        if request.app.state.peer is None:
            return {}
        answer = await request.app.state.peer.get(f"/stock/{order_id}")
        peer_saw: dict[str, Any] = answer.json()
        return peer_saw

    @app.get("/stock/{sku}")
    async def get_stock(sku: str, request: Request) -> dict[str, Any]:
        return {"sku": sku, "headers": dict(request.headers)}

    return app
