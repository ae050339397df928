"""The application factory and its lifespan (engine, HTTP clients, saga, reconciler)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from importlib.metadata import version

from common_libs.auth import RemoteKeySource, TokenVerifier
from common_libs.health import create_health_router
from common_libs.http_client import create_http_client
from common_libs.logging_config import configure_logging
from common_libs.metrics import MetricsMiddleware
from common_libs.problems import install_problem_handlers
from common_libs.request_id import RequestIdMiddleware
from fastapi import FastAPI

from app.clients.catalog_client import CatalogClient
from app.clients.service_token import ServiceTokenProvider
from app.config import SERVICE_NAME, Settings, get_settings
from app.db.session import create_engine, ping_database
from app.models.problem_models import install_problem_schema
from app.routers import order_routes
from app.services.order_saga import OrderSaga
from app.services.reconciler import Reconciler

VERSION = version(SERVICE_NAME)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the pool, the HTTP clients and the reconciler for the life of the process."""
    settings: Settings = app.state.settings
    async with AsyncExitStack() as stack:
        engine = create_engine(settings)
        stack.push_async_callback(engine.dispose)
        jwks_client = create_http_client(
            base_url=settings.jwks_url, timeout=settings.http_timeout_seconds
        )
        stack.push_async_callback(jwks_client.aclose)
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
        saga = OrderSaga(engine=engine, client=catalog, settings=settings)
        stack.push_async_callback(saga.aclose)
        reconciler = Reconciler(
            engine=engine,
            client=catalog,
            saga=saga,
            interval_seconds=settings.reconcile_interval_seconds,
            pending_max_age_seconds=settings.pending_max_age_seconds,
        )

        app.state.engine = engine
        app.state.token_verifier = TokenVerifier(
            RemoteKeySource(settings.jwks_url, client=jwks_client),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
        app.state.order_saga = saga
        app.state.reconciler = reconciler
        reconciler.start()
        stack.push_async_callback(reconciler.stop)
        yield


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ASGI application (``uvicorn app.main:create_app --factory``)."""
    settings = settings or get_settings()
    configure_logging(service=SERVICE_NAME, level=settings.log_level, json=settings.log_json)
    app = FastAPI(
        title="order-processing-service",
        version=VERSION,
        summary="Orders, their lifecycle and the order saga for the fleet.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_problem_handlers(app)
    install_problem_schema(app)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(RequestIdMiddleware)
    app.include_router(
        create_health_router(
            service=SERVICE_NAME,
            version=VERSION,
            checks={"database": lambda: ping_database(app.state.engine)},
        )
    )
    app.include_router(order_routes.router)
    return app
