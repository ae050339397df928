"""The sample service's app: ``GET /ready``, ``POST /notes``, ``GET /notes``, ``GET /settings``."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg  # type: ignore[import-untyped]
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SETTINGS = ("SAMPLE_ENVIRONMENT", "SAMPLE_GREETING", "NATS_URL", "SAMPLE_JWKS_URL")


def database_url() -> str:
    """``SAMPLE_DATABASE_URL`` as a plain libpq URL."""
    return os.environ["SAMPLE_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """One pool for the app's life."""
    async with asyncpg.create_pool(database_url(), min_size=1, max_size=2) as pool:
        app.state.pool = pool
        yield


async def ready(request: Request) -> Response:
    """200 once the database answers."""
    await request.app.state.pool.fetchval("SELECT 1")
    return JSONResponse({"status": "ready"})


async def add_note(request: Request) -> Response:
    """Keep the note's text."""
    text = (await request.json())["text"]
    await request.app.state.pool.execute("INSERT INTO notes (text) VALUES ($1)", text)
    return JSONResponse({"text": text}, status_code=201)


async def list_notes(request: Request) -> Response:
    """Every note's text, oldest first."""
    rows = await request.app.state.pool.fetch("SELECT text FROM notes ORDER BY id")
    return JSONResponse([row["text"] for row in rows])


async def settings(request: Request) -> Response:
    """The settings the runner sets, as this process sees them."""
    return JSONResponse({name: os.environ.get(name) for name in SETTINGS})


def create_app() -> Starlette:
    """The ASGI app (``uvicorn sample_app.main:create_app --factory``)."""
    return Starlette(
        routes=[
            Route("/ready", ready),
            Route("/notes", add_note, methods=["POST"]),
            Route("/notes", list_notes),
            Route("/settings", settings),
        ],
        lifespan=lifespan,
    )
