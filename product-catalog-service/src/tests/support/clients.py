"""In-process HTTP clients of the app that check every problem answer as it arrives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from common_libs.testing.problem_checks import problem_type_hooks
from fastapi import FastAPI


@asynccontextmanager
async def app_client(
    app: FastAPI, *, raise_app_exceptions: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """A client bound to ``app`` (``http://test``, no lifespan run); a problem answer whose type
    is blank or not one its operation documents for its status fails the request
    (``problem_type_hooks``)."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", event_hooks=problem_type_hooks(app)
    ) as client:
        yield client
