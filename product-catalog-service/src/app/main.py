"""The application factory and its lifespan (engine, HTTP clients, token verifier, sweeper)."""

from __future__ import annotations

import asyncio
import contextlib
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

from app.config import SERVICE_NAME, Settings, get_settings
from app.db.session import create_engine, ping_database
from app.models.problem_models import install_problem_schema
from app.routers import (
    category_routes,
    product_routes,
    provider_state_routes,
    reservation_routes,
)
from app.routers.method_not_allowed import install_method_not_allowed_handler
from app.services.reservation_manager import TtlPolicy
from app.services.reservation_sweeper import run_reservation_sweeper

VERSION = version(SERVICE_NAME)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the pool and the HTTP clients and start the sweeper; stop them all on shutdown."""
    settings: Settings = app.state.settings
    engine = create_engine(settings)
    jwks_client = create_http_client(
        base_url=settings.jwks_url, timeout=settings.http_timeout_seconds
    )
    app.state.engine = engine
    # Same pool; single-statement reads skip BEGIN/COMMIT.
    app.state.read_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
    app.state.sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    app.state.token_verifier = TokenVerifier(
        RemoteKeySource(settings.jwks_url, client=jwks_client),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )
    sweeper = asyncio.create_task(
        run_reservation_sweeper(
            engine=engine,
            interval_seconds=settings.reservation_sweep_interval_seconds,
            batch_size=settings.reservation_sweep_batch_size,
        ),
        name="reservation-sweeper",
    )
    try:
        yield
    finally:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        await jwks_client.aclose()
        await engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ASGI application (``uvicorn app.main:create_app --factory``)."""
    settings = settings or get_settings()
    configure_logging(service=SERVICE_NAME, level=settings.log_level, json=settings.log_json)
    app = FastAPI(
        title="product-catalog-service",
        version=VERSION,
        summary="Products, categories, stock and stock reservations for the fleet.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.ttl_policy = TtlPolicy(
        default=settings.reservation_default_ttl_seconds,
        minimum=settings.reservation_min_ttl_seconds,
        maximum=settings.reservation_max_ttl_seconds,
    )
    install_problem_handlers(app)
    install_method_not_allowed_handler(app)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(RequestIdMiddleware)
    app.include_router(
        create_health_router(
            service=SERVICE_NAME,
            version=VERSION,
            checks={"database": lambda: ping_database(app.state.engine)},
        )
    )
    app.include_router(product_routes.router)
    app.include_router(category_routes.router)
    app.include_router(reservation_routes.router)
    if settings.provider_states_enabled:
        app.include_router(provider_state_routes.router)
    install_problem_schema(app)
    return app
