"""The application factory and its lifespan (engine, HTTP clients, token verifier)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from common_libs.auth import RemoteKeySource, TokenVerifier
from common_libs.health import create_health_router
from common_libs.http_client import create_http_client
from common_libs.logging_config import configure_logging
from common_libs.metrics import MetricsMiddleware
from common_libs.problems import install_problem_handlers
from common_libs.request_id import RequestIdMiddleware
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import async_sessionmaker

from app.clients.catalog_client import CatalogClient
from app.config import SERVICE_NAME, Settings, get_settings
from app.db.session import create_engine, ping_database
from app.routers import conversation_routes, llm_routes
from app.services.context import ChatServices
from app.services.llm_integration import LlmClient
from app.utils.token_counter import prepare_encodings

VERSION = version(SERVICE_NAME)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the pool and the HTTP clients for the life of the process; close them on shutdown."""
    settings: Settings = app.state.settings
    # Verified tiktoken encodings in place (and loaded) before anything counts a token.
    await asyncio.to_thread(prepare_encodings, settings.tiktoken_cache_dir)
    engine = create_engine(settings)
    jwks_client = create_http_client(
        base_url=settings.jwks_url, timeout=settings.http_timeout_seconds
    )
    catalog_http = create_http_client(
        base_url=settings.catalog_url, timeout=settings.catalog_timeout_seconds
    )
    llm = LlmClient(settings)
    app.state.engine = engine
    app.state.sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    app.state.token_verifier = TokenVerifier(
        RemoteKeySource(settings.jwks_url, client=jwks_client),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )
    app.state.chat_services = ChatServices(
        settings=settings,
        llm=llm,
        catalog=CatalogClient(catalog_http, deadline_seconds=settings.catalog_timeout_seconds),
        sessions=app.state.sessionmaker,
    )
    try:
        yield
    finally:
        await llm.aclose()
        await catalog_http.aclose()
        await jwks_client.aclose()
        await engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ASGI application (``uvicorn app.main:create_app --factory``)."""
    settings = settings or get_settings()
    configure_logging(service=SERVICE_NAME, level=settings.log_level, json=settings.log_json)
    app = FastAPI(
        title="chat-llm-service",
        version=VERSION,
        summary="The shop assistant: LLM chat, embeddings and token counting for the fleet.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_problem_handlers(app)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(RequestIdMiddleware)
    app.include_router(llm_routes.router)
    app.include_router(conversation_routes.router)
    app.include_router(
        create_health_router(
            service=SERVICE_NAME,
            version=VERSION,
            checks={"database": lambda: ping_database(app.state.engine)},
        )
    )
    return app
