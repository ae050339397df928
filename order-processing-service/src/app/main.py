"""The application factory and its lifespan (engine, the events' relay and consumer, HTTP clients,
the token verifier and its deny list, settlement, reconciler, the per-user order limit)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from importlib.metadata import version

from common_libs.db import ping_database, read_only_engine
from common_libs.errors import ProblemError
from common_libs.events import ORDERS, open_broker, start_relay
from common_libs.http_client import create_http_client
from common_libs.problem_types import (
    BEARER_AUTH_PROBLEM_TYPES,
    IDEMPOTENCY_KEY_PROBLEM_TYPES,
    INVALID_CURSOR,
    RATE_LIMITED,
    ProblemType,
)
from common_libs.ratelimit import RateLimiter, RateLimitPolicy, start_rate_limit_purge
from common_libs.service_app import create_service_app, open_token_verifier, run_in_background
from fastapi import FastAPI

from app.clients.catalog_client import CatalogClient
from app.clients.service_token import ServiceTokenProvider
from app.config import SERVICE_NAME, Settings, get_settings
from app.db.session import create_engine
from app.events import user_erasure_consumer
from app.routers import order_routes, provider_state_routes
from app.services.errors import (
    MixedCurrencies,
    OrderNotFound,
    OrderStateConflict,
    OutOfStock,
    UnknownProduct,
)
from app.services.reconciler import Reconciler
from app.services.settlement import OrderSettlement

VERSION = version(SERVICE_NAME)

# The problem types this service answers besides what every service app answers (README,
# "Problem types"): the shared ones of its auth, pages, order limit and Idempotency-Key, and its
# own.
PROBLEM_TYPES: tuple[ProblemType | type[ProblemError], ...] = (
    *BEARER_AUTH_PROBLEM_TYPES,
    INVALID_CURSOR,
    RATE_LIMITED,
    *IDEMPOTENCY_KEY_PROBLEM_TYPES,
    OrderNotFound,
    OrderStateConflict,
    OutOfStock,
    UnknownProduct,
    MixedCurrencies,
)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the pool, the outbox relay, the erasure consumer, the HTTP clients, the deny list and
    the reconciler for the life of the process.

    Each resource's cleanup is registered as soon as it exists: a start that fails midway closes
    what it had opened.
    """
    settings: Settings = app.state.settings
    async with AsyncExitStack() as stack:
        engine = create_engine(settings)
        stack.push_async_callback(engine.dispose)
        app.state.engine = engine
        app.state.read_engine = read_only_engine(engine)  # same pool, reads skip BEGIN/COMMIT
        # The broker connects when the relay first needs it. /ready does not depend on it: while
        # it is away, writes go on and their events wait in the outbox.
        broker = open_broker(stack, settings.nats_url, name=SERVICE_NAME)
        app.state.relay = start_relay(stack, engine=engine, broker=broker, stream=ORDERS)
        # users.user.deleted: erase that user's shipping addresses (it waits while NATS is away).
        erasure = user_erasure_consumer(engine=engine, broker=broker)
        app.state.user_erasure = erasure
        run_in_background(stack, erasure.run(), name="user-erasure-consumer")
        # One client per target; each call's own deadline bounds it further.
        users_client = create_http_client(
            base_url=settings.users_url, timeout=settings.catalog_deadline_seconds
        )
        stack.push_async_callback(users_client.aclose)
        catalog_http = create_http_client(
            base_url=settings.catalog_url, timeout=settings.catalog_deadline_seconds
        )
        stack.push_async_callback(catalog_http.aclose)

        tokens = ServiceTokenProvider(
            http=users_client,
            client_id=settings.service_client_id,
            client_secret=settings.service_client_secret,
        )
        catalog = CatalogClient(http=catalog_http, tokens=tokens)
        settlement = OrderSettlement(engine=engine, client=catalog, settings=settings)
        stack.push_async_callback(settlement.aclose)
        reconciler = Reconciler(
            engine=engine,
            settlement=settlement,
            interval_seconds=settings.reconcile_interval_seconds,
            pending_max_age_seconds=settings.pending_max_age_seconds,
        )

        # POST /orders per user, counted in the database: the same limit on every replica.
        app.state.order_limiter = RateLimiter(
            engine,
            RateLimitPolicy(
                "orders",
                quota=settings.place_order_limit,
                window_seconds=settings.place_order_window_seconds,
            ),
        )
        start_rate_limit_purge(stack, engine)

        # Tokens of accounts deleted since they were issued are refused (users.user.deleted).
        app.state.token_verifier = open_token_verifier(stack, settings, broker=broker)
        app.state.settlement = settlement
        app.state.reconciler = reconciler
        run_in_background(stack, reconciler.run_forever(), name="order-reconciler")
        yield


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ASGI application (``uvicorn app.main:create_app --factory``)."""
    settings = settings or get_settings()
    app = create_service_app(
        name=SERVICE_NAME,
        version=VERSION,
        summary="Orders, their lifecycle and the order saga for the fleet.",
        lifespan=lifespan,
        settings=settings,
        ready_checks={"database": lambda: ping_database(app.state.engine)},
        problem_types=PROBLEM_TYPES,
    )
    app.include_router(order_routes.router)
    if settings.provider_states_enabled:
        app.include_router(provider_state_routes.router)
    return app
