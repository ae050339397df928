"""Run an extra instance of the service in process (its own lifespan, pool and clients)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from common_libs.testing.app_checks import asgi_client
from fastapi import FastAPI

from app.config import Settings
from app.main import create_app


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with its lifespan running, and a client bound to it (which checks the type of
    each problem answer against the app's document, as the suite's ``client`` does)."""
    application = create_app(settings)
    async with application.router.lifespan_context(application), asgi_client(application) as client:
        yield application, client
