"""The application every service builds alike: logging, tracing, problems, request ids, metrics,
health.

``create_service_app`` is the one place where a service's FastAPI app gets what every service
must have, so that a new cross-cutting concern (tracing, say) is added once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol

from fastapi import FastAPI
from fastapi.routing import APIRoute

from common_libs.auth import RemoteKeySource, TokenVerifier
from common_libs.deprecation import document_deprecations
from common_libs.errors import ProblemError
from common_libs.health import ReadinessCheck, create_health_router
from common_libs.logging_config import configure_logging
from common_libs.metrics import MetricsMiddleware
from common_libs.problem_types import ProblemType
from common_libs.problems import install_problem_handlers
from common_libs.request_id import RequestIdMiddleware
from common_libs.telemetry import configure_tracing, flush_spans, instrument_app
from common_libs.text_inputs import StorableTextMiddleware

if TYPE_CHECKING:
    from common_libs.events.broker import Broker

__all__ = [
    "Lifespan",
    "LoggingSettings",
    "TokenSettings",
    "create_service_app",
    "open_token_verifier",
    "operation_id",
    "run_in_background",
]

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

_logger = logging.getLogger("common_libs.service_app")


class LoggingSettings(Protocol):
    """What :func:`create_service_app` reads (every ``ServiceSettings`` has it)."""

    @property
    def log_level(self) -> str: ...

    @property
    def log_json(self) -> bool: ...


class TokenSettings(Protocol):
    """What :func:`open_token_verifier` reads (``VerifyingServiceSettings`` has it)."""

    @property
    def jwks_url(self) -> str: ...

    @property
    def jwt_issuer(self) -> str: ...

    @property
    def jwt_audience(self) -> str: ...

    @property
    def http_timeout_seconds(self) -> float: ...

    @property
    def deny_list_keep_seconds(self) -> float: ...


def create_service_app(
    *,
    name: str,
    version: str,
    summary: str,
    lifespan: Lifespan,
    settings: LoggingSettings,
    ready_checks: Mapping[str, ReadinessCheck],
    problem_types: Iterable[ProblemType | type[ProblemError]] = (),
) -> FastAPI:
    """A FastAPI app with JSON logging, tracing, problem+json errors, request ids, metrics,
    health, and text inputs refused when PostgreSQL could not store them.

    ``settings`` is kept in ``app.state.settings`` (its ``log_level`` and ``log_json`` configure
    the logging); ``ready_checks`` are what ``GET /ready`` runs. Tracing is set up for the
    process from the ``OTEL_*`` variables (``name`` is the default ``service.name``; see
    :mod:`common_libs.telemetry`) and every request but the probes and scrapes is a server span.

    ``problem_types`` are the service's own problem types (or their error classes) and the shared
    ones it answers besides what every service answers (the OpenAPI catalogue,
    :func:`common_libs.problems.install_problem_handlers`). Operation ids are the route
    functions' names in lowerCamelCase (:func:`operation_id`).
    """
    configure_logging(service=name, level=settings.log_level, json=settings.log_json)
    configure_tracing(service=name, version=version)
    # FastAPI's own telemetry stays off: common_libs.telemetry makes the server spans (at a
    # fraction of the cost for a request that is not sampled) and Prometheus has the metrics.
    app = FastAPI(
        title=name,
        version=version,
        summary=summary,
        description=_DESCRIPTION.format(summary=summary),
        # Relative: the document describes the server it is read from.
        servers=[{"url": "/"}],
        lifespan=_service_lifespan(lifespan),
        telemetry={"tracing": False, "metrics": False, "logs": False, "auto_configure": False},
        generate_unique_id_function=operation_id,
    )
    instrument_app(app)
    app.state.settings = settings
    install_problem_handlers(app, problem_types=problem_types)
    # Innermost of the three: its 422 is counted, and carries the request id.
    app.add_middleware(StorableTextMiddleware)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(RequestIdMiddleware)
    app.include_router(create_health_router(service=name, version=version, checks=ready_checks))
    document_deprecations(app)
    _declare_tags(app)
    return app


def operation_id(route: APIRoute) -> str:
    """A route's OpenAPI ``operationId``: its function's name in lowerCamelCase
    (``place_order`` -> ``placeOrder``)."""
    first, *rest = route.name.strip("_").split("_")
    return first[:1].lower() + first[1:] + "".join(word[:1].upper() + word[1:] for word in rest)


_DESCRIPTION = """\
{summary}

This is the service's own document: its paths as the service serves them, internal ones
included. Clients reach the public part through the fleet's gateway, whose document
(`/api/openapi.json` at the gateway) is built from this one."""


def _declare_tags(app: FastAPI) -> None:
    """List every tag the operations use at the top of ``app.openapi()`` (in their order of first
    use), so that each one is declared, as OpenAPI linters expect."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            declared = {tag["name"] for tag in document.get("tags", [])}
            used = [
                tag
                for item in document.get("paths", {}).values()
                for operation in item.values()
                if isinstance(operation, dict)
                for tag in operation.get("tags", [])
            ]
            missing = [{"name": tag} for tag in dict.fromkeys(used) if tag not in declared]
            if missing:
                document["tags"] = [*document.get("tags", []), *missing]
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _service_lifespan(lifespan: Lifespan) -> Lifespan:
    """The service's lifespan, with what it made at start frozen while it serves, and the spans
    still batched sent at its end (:func:`flush_spans`).

    Freezing (:func:`gc.freeze`) takes every object alive once the service has started (its
    modules, app, routes, pools: some 130,000 in the catalog) out of the collector's view, so a
    full collection under load walks only what requests made since: about 2 ms instead of 80-100
    ms, a pause that every request in flight waited out (the catalog's p99 at 16 connections was
    85-100 ms against its floor's 7-11). Hardly any of it is garbage (a collection there freed 40
    objects), so nothing is collected first, which would cost start 0.1 s. The end thaws them
    (:func:`gc.unfreeze`), for a process that starts apps one after another (a test session).
    """

    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        try:
            async with lifespan(app):
                gc.freeze()
                try:
                    yield
                finally:
                    gc.unfreeze()
        finally:
            await flush_spans()

    return run


def open_token_verifier(
    stack: AsyncExitStack, settings: TokenSettings, *, broker: Broker | None = None
) -> TokenVerifier:
    """A verifier of user-service's tokens whose JWKS client ``stack`` closes.

    With ``broker``, it also refuses the tokens of deleted accounts: a deny list follows
    ``users.user.deleted`` in the background until ``stack`` closes
    (:func:`common_libs.events.start_deny_list`), keeping each id
    ``settings.deny_list_keep_seconds``. Needs the ``http`` extra (the JWKS client).
    """
    # Imported here: the HTTP client needs aiohttp (the ``http`` extra), which user-service,
    # the issuer that verifies its own tokens, does not install.
    from common_libs.http_client import create_http_client, origin_urls

    client = create_http_client(base_url=settings.jwks_url, timeout=settings.http_timeout_seconds)
    stack.push_async_callback(client.aclose)
    deny_list = None
    if broker is not None:
        from common_libs.events.deny_list import start_deny_list

        deny_list = start_deny_list(
            stack, broker=broker, keep_seconds=settings.deny_list_keep_seconds
        )
    # Several URLs (user-service's replicas): the client sends each fetch to the next of them, and
    # a refused one to the one after; the key source asks for the first, the client moves it on.
    return TokenVerifier(
        RemoteKeySource(str(origin_urls(settings.jwks_url)[0]), client=client),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        deny_list=deny_list,
    )


def run_in_background(
    stack: AsyncExitStack, work: Coroutine[Any, Any, None], *, name: str
) -> asyncio.Task[None]:
    """Start ``work`` as a task that ``stack`` cancels, and waits for, when it closes."""
    task = asyncio.create_task(work, name=name)
    stack.push_async_callback(_cancel, task)
    return task


# How long a cancelled task has to end before it is cancelled again: more than a consumer's
# drain of the message in hand (``DRAIN_SECONDS``).
STOP_GRACE_SECONDS = 10.0


async def _cancel(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait for it to end, cancelling it again each ``STOP_GRACE_SECONDS``
    while it runs on: a cancellation can be lost on its way (Python 3.11's ``asyncio.wait_for``
    returns the result of a wait that completed as the cancellation came, and nats-py waits that
    way), and a task that lost it would hold the lifespan's exit for ever."""
    while not task.done():
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=STOP_GRACE_SECONDS)
        if not done:
            _logger.warning(
                "task %s still running after its cancellation; cancelling it again", task.get_name()
            )
    with contextlib.suppress(asyncio.CancelledError):
        await task
