"""The application factory and its lifespan (engine, HTTP clients, token verifier)."""

from __future__ import annotations

import asyncio
import logging
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
from app.services.llm_integration import LlmClient, StartingUp
from app.utils.token_counter import encoding_for_model_async, prepare_encodings

VERSION = version(SERVICE_NAME)
_logger = logging.getLogger(__name__)


async def _load_chat_encoding(settings: Settings) -> None:
    try:
        await encoding_for_model_async(settings.chat_model, fallback=settings.fallback_encoding)
    except Exception:
        _logger.exception("loading the chat model's encoding failed; the first chat turn retries")


async def _loaded(task: asyncio.Task[None]) -> None:
    """Readiness: the background load is done (a failure is logged; the first turn retries)."""
    if not task.done():
        raise StartingUp("the chat model's encoding is still loading")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the pool and the HTTP clients for the life of the process; close them on shutdown."""
    settings: Settings = app.state.settings
    # Verified tiktoken encoding files in place before anything counts a token (a wrong file
    # stops the start). Loading one into memory takes a few tenths of a second and 30-70 MiB:
    # the chat model's is loaded in the background from now on (a chat turn that comes first
    # waits for it), any other on its first use (embeddings, count_tokens for another model).
    await asyncio.to_thread(prepare_encodings, settings.tiktoken_cache_dir)
    chat_encoding = asyncio.create_task(_load_chat_encoding(settings), name="load-chat-encoding")
    app.state.chat_encoding = chat_encoding
    engine = create_engine(settings)
    jwks_client = create_http_client(
        base_url=settings.jwks_url, timeout=settings.http_timeout_seconds
    )
    catalog_http = create_http_client(
        base_url=settings.catalog_url, timeout=settings.catalog_timeout_seconds
    )
    llm = LlmClient(settings)
    llm.start()
    app.state.llm = llm
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
        await chat_encoding
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
            checks={
                "database": lambda: ping_database(app.state.engine),
                # Ready means a chat turn waits for nothing: the SDK client is built and the
                # chat model's encoding is loaded (both start in the background at start-up).
                "llm_client": lambda: app.state.llm.built(),
                "tokenizer": lambda: _loaded(app.state.chat_encoding),
            },
        )
    )
    return app
