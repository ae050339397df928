"""The application factory and its lifespan (engine, HTTP clients, token verifier and its deny
list, sweeper, event relay)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from importlib.metadata import version

from common_libs.db import ping_database, read_only_engine
from common_libs.errors import ProblemError
from common_libs.events import CATALOG, open_broker, start_relay
from common_libs.problem_types import BEARER_AUTH_PROBLEM_TYPES, INVALID_CURSOR, ProblemType
from common_libs.service_app import create_service_app, open_token_verifier, run_in_background
from fastapi import FastAPI

from app.config import SERVICE_NAME, Settings, get_settings
from app.db.session import create_engine
from app.events import COALESCED
from app.routers import (
    category_routes,
    product_routes,
    provider_state_routes,
    reservation_routes,
)
from app.services.errors import (
    DuplicateSku,
    OutOfStock,
    ProductHasHeldStock,
    ProductNotFound,
    ReservationMismatch,
    ReservationNotFound,
    ReservationNotHeld,
    StockBelowHeld,
    UnknownProduct,
)
from app.services.reservation_manager import TtlPolicy
from app.services.reservation_sweeper import run_reservation_sweeper

VERSION = version(SERVICE_NAME)

# The problem types this service answers besides what every service app answers (README,
# "Problem types"): the shared ones of its auth and pages, and its own.
PROBLEM_TYPES: tuple[ProblemType | type[ProblemError], ...] = (
    *BEARER_AUTH_PROBLEM_TYPES,
    INVALID_CURSOR,
    ProductNotFound,
    DuplicateSku,
    StockBelowHeld,
    ProductHasHeldStock,
    UnknownProduct,
    OutOfStock,
    ReservationNotFound,
    ReservationMismatch,
    ReservationNotHeld,
)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the pool and the HTTP clients, start the deny list, the sweeper and the outbox relay;
    stop them all on shutdown.

    Each resource's cleanup is registered as soon as it exists: a start that fails midway closes
    what it had opened.
    """
    settings: Settings = app.state.settings
    async with AsyncExitStack() as stack:
        engine = create_engine(settings)
        stack.push_async_callback(engine.dispose)
        app.state.engine = engine
        app.state.read_engine = read_only_engine(engine)  # same pool, reads skip BEGIN/COMMIT
        # The broker is connected on first use and again after it was lost: writes never wait
        # for it, and /ready does not ask about it (events_outbox_backlog and
        # events_deny_list_following on /metrics say when it is away).
        broker = open_broker(stack, settings.nats_url, name=SERVICE_NAME)
        # Tokens of accounts deleted since they were issued are refused (users.user.deleted).
        app.state.token_verifier = open_token_verifier(stack, settings, broker=broker)
        run_in_background(
            stack,
            run_reservation_sweeper(
                engine=engine,
                interval_seconds=settings.reservation_sweep_interval_seconds,
                batch_size=settings.reservation_sweep_batch_size,
            ),
            name="reservation-sweeper",
        )
        # Publishes the outbox to the CATALOG stream.
        app.state.relay = start_relay(
            stack, engine=engine, broker=broker, stream=CATALOG, coalesce=COALESCED
        )
        yield


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ASGI application (``uvicorn app.main:create_app --factory``)."""
    settings = settings or get_settings()
    app = create_service_app(
        name=SERVICE_NAME,
        version=VERSION,
        summary="Products, categories, stock and stock reservations for the fleet.",
        lifespan=lifespan,
        settings=settings,
        ready_checks={"database": lambda: ping_database(app.state.engine)},
        problem_types=PROBLEM_TYPES,
    )
    app.state.ttl_policy = TtlPolicy(
        default=settings.reservation_default_ttl_seconds,
        minimum=settings.reservation_min_ttl_seconds,
        maximum=settings.reservation_max_ttl_seconds,
    )
    app.include_router(product_routes.router)
    app.include_router(category_routes.router)
    app.include_router(reservation_routes.router)
    if settings.provider_states_enabled:
        app.include_router(provider_state_routes.router)
    return app
