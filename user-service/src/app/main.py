"""The application factory and its lifespan (engine, keys, password hashing, the outbox relay,
the deny list of deleted accounts, the failed-login limit, background purges)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from importlib.metadata import version

from common_libs.auth import TokenVerifier
from common_libs.db import ping_database, read_only_engine
from common_libs.events import USERS, open_broker, start_deny_list, start_relay
from common_libs.ratelimit import RateLimiter, RateLimitPolicy, start_rate_limit_purge
from common_libs.service_app import create_service_app, run_in_background
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import SERVICE_NAME, InsecureSettingsError, Settings, get_settings
from app.db.session import create_engine, create_limits_engine, unit_of_work
from app.routers import auth_routes, provider_state_routes, user_routes
from app.security.memory import pin_malloc_mmap_threshold
from app.security.passwords import Argon2Parameters, PasswordHashing
from app.security.signing_keys import load_key_ring
from app.security.tokens import TokenIssuer
from app.services import auth_manager, user_manager
from app.services.errors import PROBLEM_TYPES

VERSION = version(SERVICE_NAME)
_logger = logging.getLogger(__name__)


async def bootstrap_admin(
    sessionmaker: async_sessionmaker[AsyncSession], passwords: PasswordHashing, settings: Settings
) -> None:
    """Create the configured admin account when it does not exist yet."""
    if settings.admin_email is None or settings.admin_password is None:
        return
    async with sessionmaker() as session, unit_of_work(session):
        await user_manager.ensure_admin(
            session=session,
            passwords=passwords,
            email=settings.admin_email,
            password=settings.admin_password.get_secret_value(),
            full_name=settings.admin_full_name,
        )


async def purge_refresh_tokens_forever(
    sessionmaker: async_sessionmaker[AsyncSession], interval_seconds: float
) -> None:
    """Delete expired refresh tokens now and then, in short batches, until cancelled."""
    while True:
        try:
            deleted = 1
            while deleted:
                async with sessionmaker() as session, unit_of_work(session):
                    deleted = await auth_manager.purge_expired_refresh_tokens(session=session)
        except Exception:
            _logger.exception("purging expired refresh tokens failed; trying again later")
        await asyncio.sleep(interval_seconds)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the pool, start the outbox relay and the deny list, load the keys, create the admin;
    close and stop everything on shutdown.

    Each resource's cleanup is registered as soon as it exists: a start that fails midway closes
    what it had opened.
    """
    settings: Settings = app.state.settings
    # Before the first hash: each hash's memory (memory_cost KiB) is unmapped when it is done.
    returns_hash_memory = pin_malloc_mmap_threshold()
    keys = load_key_ring(settings)
    passwords = PasswordHashing(
        Argon2Parameters(
            time_cost=settings.argon2_time_cost,
            memory_cost_kib=settings.argon2_memory_cost_kib,
            parallelism=settings.argon2_parallelism,
        ),
        concurrency=settings.password_hash_concurrency,
    )
    async with AsyncExitStack() as stack:
        engine = create_engine(settings)
        stack.push_async_callback(engine.dispose)
        sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        app.state.engine = engine
        app.state.sessionmaker = sessionmaker
        app.state.read_engine = read_only_engine(engine)
        # Publishes the committed events of app.events to NATS; /ready does not depend on it
        # (writes go on while the broker is away, and the outbox backlog on /metrics says so).
        broker = open_broker(stack, settings.nats_url, name=SERVICE_NAME)
        app.state.relay = start_relay(stack, engine=engine, broker=broker, stream=USERS)
        # Failed logins per account, counted in the database: the same limit on every replica,
        # on a small pool of its own (see create_limits_engine).
        limits_engine = create_limits_engine(settings)
        stack.push_async_callback(limits_engine.dispose)
        app.state.login_limiter = RateLimiter(
            limits_engine,
            RateLimitPolicy(
                "logins",
                quota=settings.login_failure_limit,
                window_seconds=settings.login_failure_window_seconds,
            ),
        )
        start_rate_limit_purge(stack, engine)
        app.state.keys = keys
        app.state.passwords = passwords
        app.state.tokens = TokenIssuer(
            keys,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            access_ttl_seconds=settings.access_token_ttl_seconds,
            refresh_ttl_seconds=settings.refresh_token_ttl_seconds,
        )
        # The issuer verifies its own tokens with its own public keys, never over HTTP, and
        # refuses those of accounts deleted since (every replica follows users.user.deleted).
        app.state.token_verifier = TokenVerifier(
            keys,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            deny_list=start_deny_list(
                stack, broker=broker, keep_seconds=settings.deny_list_keep_seconds
            ),
        )
        await passwords.warm_up()
        await bootstrap_admin(sessionmaker, passwords, settings)
        run_in_background(
            stack,
            purge_refresh_tokens_forever(
                sessionmaker, settings.refresh_token_purge_interval_seconds
            ),
            name="purge-refresh-tokens",
        )
        _logger.info(
            "password hashing: %s; memory returned after each hash: %s",
            passwords.parameters.describe(),
            "yes" if returns_hash_memory else "no (not glibc)",
        )
        yield


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ASGI application (``uvicorn app.main:create_app --factory``)."""
    settings = settings or get_settings()
    problems = settings.production_problems()
    if problems:
        raise InsecureSettingsError("refusing to start: " + "; ".join(problems))
    app = create_service_app(
        name=SERVICE_NAME,
        version=VERSION,
        summary="Accounts, login and token issuing for the fleet.",
        lifespan=lifespan,
        settings=settings,
        ready_checks={"database": lambda: ping_database(app.state.engine)},
        problem_types=PROBLEM_TYPES,
    )
    app.include_router(auth_routes.router)
    app.include_router(user_routes.router)
    if settings.provider_states_enabled:
        app.include_router(provider_state_routes.router)
    return app
