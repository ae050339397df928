"""The application factory and its lifespan (engine, HTTP clients, token verifier and its deny
list, the catalog's read model and the consumer of deleted users)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from importlib.metadata import version

from common_libs.db import ping_database, read_only_engine
from common_libs.events import open_broker
from common_libs.http_client import create_http_client
from common_libs.service_app import create_service_app, open_token_verifier
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import async_sessionmaker

from app.clients.catalog_client import CatalogClient
from app.clients.orders_client import OrdersClient
from app.config import SERVICE_NAME, Settings, get_settings
from app.db.session import create_engine
from app.routers import conversation_routes, llm_routes
from app.services.catalog_read_model import start_catalog_read_model
from app.services.context import ChatServices
from app.services.errors import PROBLEM_TYPES, StartingUp
from app.services.leak_guard import canary_of
from app.services.llm_integration import LlmClient
from app.services.user_erasure import start_user_erasure
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


async def _settled(task: asyncio.Task[None]) -> None:
    # Not cancelled: the load runs in a worker thread, which a cancellation would not stop.
    await task


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the pool and the HTTP clients and start the catalog's read model, the deny list and
    the erasure consumer for the life of the process; stop and close them on shutdown.

    Each resource's cleanup is registered as soon as it exists: a start that fails midway closes
    what it had opened.
    """
    settings: Settings = app.state.settings
    # Verified tiktoken encoding files in place before anything counts a token (a wrong file
    # stops the start). Loading one into memory takes a few tenths of a second and 30-70 MiB:
    # the chat model's is loaded in the background from now on (a chat turn that comes first
    # waits for it), any other on its first use (embeddings, count_tokens for another model).
    await asyncio.to_thread(prepare_encodings, settings.tiktoken_cache_dir)
    async with AsyncExitStack() as stack:
        chat_encoding = asyncio.create_task(
            _load_chat_encoding(settings), name="load-chat-encoding"
        )
        stack.push_async_callback(_settled, chat_encoding)
        app.state.chat_encoding = chat_encoding
        engine = create_engine(settings)
        stack.push_async_callback(engine.dispose)
        app.state.engine = engine
        app.state.read_engine = read_only_engine(engine)  # same pool, reads skip BEGIN/COMMIT
        app.state.sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        catalog_http = create_http_client(
            base_url=settings.catalog_url, timeout=settings.catalog_timeout_seconds
        )
        stack.push_async_callback(catalog_http.aclose)
        orders_http = create_http_client(
            base_url=settings.orders_url, timeout=settings.orders_timeout_seconds
        )
        stack.push_async_callback(orders_http.aclose)
        llm = LlmClient(settings)
        llm.start()
        stack.push_async_callback(llm.aclose)
        app.state.llm = llm
        # The service produces no events; it consumes catalog.product.> (its read model) and
        # users.user.deleted twice: to erase the user's data (a durable consumer) and to refuse
        # their tokens (the verifier's deny list, in every replica). The broker is connected on
        # first use and closed when the stack closes (after the consumers stop).
        broker = open_broker(stack, settings.nats_url, name=SERVICE_NAME)
        app.state.token_verifier = open_token_verifier(stack, settings, broker=broker)
        # The catalog's HTTP API serves only the read model's initial fill.
        catalog = CatalogClient(catalog_http, deadline_seconds=settings.catalog_timeout_seconds)
        read_model = start_catalog_read_model(stack, engine=engine, broker=broker, catalog=catalog)
        app.state.catalog_read_model = read_model
        app.state.chat_services = ChatServices(
            settings=settings,
            llm=llm,
            catalog=read_model,
            orders=OrdersClient(orders_http, deadline_seconds=settings.orders_timeout_seconds),
            engine=engine,
            sessions=app.state.sessionmaker,
            canary=canary_of(settings),
        )
        app.state.user_erasure = start_user_erasure(stack, engine=engine, broker=broker)
        yield


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ASGI application (``uvicorn app.main:create_app --factory``)."""
    settings = settings or get_settings()
    app = create_service_app(
        name=SERVICE_NAME,
        problem_types=PROBLEM_TYPES,
        version=VERSION,
        summary="The shop assistant: LLM chat, embeddings and token counting for the fleet.",
        lifespan=lifespan,
        settings=settings,
        ready_checks={
            "database": lambda: ping_database(app.state.engine),
            # Ready means a chat turn waits for nothing: the SDK client is built and the
            # chat model's encoding is loaded (both start in the background at start-up).
            "llm_client": lambda: app.state.llm.built(),
            "tokenizer": lambda: _loaded(app.state.chat_encoding),
            # Grounding reads the read model: ready once it was filled and its consumer caught
            # up with the stream once since the start.
            "catalog_read_model": lambda: app.state.catalog_read_model.ready(),
        },
    )
    app.include_router(llm_routes.router)
    app.include_router(conversation_routes.router)
    return app
