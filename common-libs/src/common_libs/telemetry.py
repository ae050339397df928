"""Tracing with OpenTelemetry: set up once per process from the standard ``OTEL_*`` variables.

- :func:`configure_tracing` installs the SDK's tracer provider only when there is somewhere to
  export to (``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) and the
  SDK is not disabled (``OTEL_SDK_DISABLED``). Otherwise the API's no-op tracer stays: it records
  nothing, yet hands the incoming span context on unchanged, so the ``traceparent`` a request
  came with still reaches its log lines and every call it makes.
- :func:`instrument_app`: a server span per request (:class:`ServerSpanMiddleware`).
- :class:`TracingTransport`: a client span per call of an httpx client (``create_http_client``
  uses it), whose context goes out in ``traceparent``/``tracestate``.
- :func:`trace_statements`: a client span per statement of an engine (``create_engine`` uses it).

The spans are made here rather than by OpenTelemetry's ASGI, httpx and SQLAlchemy
instrumentations (or FastAPI's own telemetry): those gather every attribute before they know
whether the span records, which cost 25-150 µs per request, call or statement even when nothing
is sampled (README, version 1.7.0). Here a server span that does not record costs its creation
and nothing else, and under it calls and statements make no span at all. Attribute names are
the stable semantic conventions'; query strings, parameter values and exception messages are
left out, as they may hold personal data (an exception's type is kept, its text goes to the log).
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import TYPE_CHECKING, Any

import httpx
from fastapi import FastAPI
from opentelemetry import context, propagate, trace
from opentelemetry.semconv.attributes import (
    db_attributes,
    error_attributes,
    http_attributes,
    server_attributes,
    url_attributes,
)
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import common_libs

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from sqlalchemy.engine import Connection, ExceptionContext
    from sqlalchemy.engine.interfaces import ExecutionContext
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = [
    "UNTRACED_PATHS",
    "ServerSpanMiddleware",
    "TracingTransport",
    "configure_tracing",
    "flush_spans",
    "instrument_app",
    "trace_statements",
    "tracer_provider_from_env",
]

# Probes and scrapes: a span each would drown the traces of real work.
UNTRACED_PATHS = frozenset({"/health", "/ready", "/metrics"})

_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)

# A proxy until a provider is installed, then that provider's tracer.
_tracer = trace.get_tracer(__name__, common_libs.__version__)
_lock = threading.Lock()
_installed: TracerProvider | None = None


def tracer_provider_from_env(*, service: str, version: str) -> TracerProvider | None:
    """The SDK provider that the ``OTEL_*`` variables ask for, or None when they ask for no export.

    Resource: ``service.name`` (``OTEL_SERVICE_NAME``, else ``service``) and ``service.version``,
    under whatever ``OTEL_RESOURCE_ATTRIBUTES`` says. Sampler: the SDK's own reading of
    ``OTEL_TRACES_SAMPLER``/``OTEL_TRACES_SAMPLER_ARG`` (parent-based always-on by default). The
    spans go to the OTLP/HTTP exporter (which reads the other ``OTEL_EXPORTER_OTLP_*``) through a
    batch processor; the provider flushes what is pending when the process exits.
    """
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if not any(os.environ.get(name, "").strip() for name in _ENDPOINT_VARIABLES):
        return None
    # Imported here: a process that exports nothing never loads the SDK, protobuf and requests.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    own = Resource.create({"service.name": service, "service.version": version})
    # Resource.create lets the attributes given override the environment's; the other way round
    # here, so that OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win.
    provider = TracerProvider(resource=own.merge(OTELResourceDetector().detect()))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def configure_tracing(*, service: str, version: str) -> TracerProvider | None:
    """Install :func:`tracer_provider_from_env`'s provider as this process's, once.

    Returns the provider installed, by this call or an earlier one, or None while there is none.
    Later calls change nothing: tests build many apps in one process.
    """
    global _installed
    with _lock:
        if _installed is None:
            provider = tracer_provider_from_env(service=service, version=version)
            if provider is not None:
                trace.set_tracer_provider(provider)
                _installed = provider
        return _installed


async def flush_spans() -> bool:
    """Send the spans still waiting for their batch; False if some could not be sent in time.

    The provider also does it when the process exits, but uvicorn ends a process stopped by
    SIGTERM with that signal once it has shut down, and then no exit handler runs: the app's
    lifespan calls this last (``create_service_app`` does). A process that exports nothing has
    nothing to send.
    """
    provider = _installed
    return provider is None or await asyncio.to_thread(provider.force_flush)


def instrument_app(app: FastAPI) -> None:
    """Wrap the app's whole middleware stack, error handlers included, in a
    :class:`ServerSpanMiddleware`: what a request logs, even its unhandled error, belongs to its
    span."""
    build = app.build_middleware_stack

    def build_inside_span() -> ASGIApp:
        return ServerSpanMiddleware(build())

    app.build_middleware_stack = build_inside_span  # type: ignore[method-assign]


class ServerSpanMiddleware:
    """A server span per HTTP request, continuing the trace of an incoming ``traceparent``.

    Named ``METHOD /route/{template}`` once routing has found the route (the method alone when
    none matched); ``/health``, ``/ready`` and ``/metrics`` get none. The span is current while
    the request is handled, the error handlers' work included.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNTRACED_PATHS:
            await self.app(scope, receive, send)
            return
        method = scope["method"] if scope["method"] in _METHODS else "_OTHER"
        parent = _incoming_context(scope)
        span = _tracer.start_span(method, parent, kind=SpanKind.SERVER)
        token = context.attach(trace.set_span_in_context(span, parent))
        try:
            if span.is_recording():
                await _record_request(self.app, span, method, scope, receive, send)
            else:
                await self.app(scope, receive, send)
        finally:
            context.detach(token)
            span.end()


def _incoming_context(scope: Scope) -> context.Context:
    """The caller's span context (and baggage) from the request's headers, if it sent any."""
    fields = propagate.get_global_textmap().fields
    carrier = {}
    for key, value in scope["headers"]:
        name = key.decode("latin-1").lower()
        if name in fields:
            carrier[name] = value.decode("latin-1")
    return propagate.extract(carrier) if carrier else context.get_current()


async def _record_request(
    app: ASGIApp, span: Span, method: str, scope: Scope, receive: Receive, send: Send
) -> None:
    """Run the request with its recording span: attributes, route, status, error."""
    span.set_attributes(
        {
            http_attributes.HTTP_REQUEST_METHOD: method,
            url_attributes.URL_SCHEME: scope["scheme"],
            url_attributes.URL_PATH: scope["path"],
        }
    )
    named = False

    def name_by_route() -> None:
        nonlocal named
        if not named:
            named = True
            template = getattr(scope.get("route"), "path", None)
            if template:
                span.update_name(f"{method} {template}")
                span.set_attribute(http_attributes.HTTP_ROUTE, template)

    async def send_recording(message: Message) -> None:
        if message["type"] == "http.response.start":
            name_by_route()
            status: int = message["status"]
            span.set_attribute(http_attributes.HTTP_RESPONSE_STATUS_CODE, status)
            if status >= 500:
                _set_error(span, str(status))
        await send(message)

    try:
        await app(scope, receive, send_recording)
    except BaseException as error:
        name_by_route()
        _set_error(span, type(error).__qualname__)
        raise


class TracingTransport(httpx.AsyncBaseTransport):
    """A client span around each request of the transport it wraps, sent along as
    ``traceparent`` (and ``tracestate``): the peer continues the trace under this span.

    The span ends when the response's headers are in. A status of 400 or more, or an exception,
    marks it as an error. Under a span that does not record (a request not sampled, or a process
    that exports nothing) no span is made: the current span context goes out as it is.
    """

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self.transport = transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` inside a client span."""
        current = trace.get_current_span()
        if current.get_span_context().is_valid and not current.is_recording():
            # A trace this process does not record (not sampled, or no SDK): a span here would
            # record nothing either, so the peer continues under the current one.
            propagate.inject(request.headers)
            return await self.transport.handle_async_request(request)
        method = request.method if request.method in _METHODS else "_OTHER"
        span = _tracer.start_span(method, kind=SpanKind.CLIENT)
        try:
            propagate.inject(request.headers, context=trace.set_span_in_context(span))
            url = request.url
            path = url.raw_path.split(b"?", 1)[0].decode("ascii")
            span.set_attributes(
                {
                    http_attributes.HTTP_REQUEST_METHOD: method,
                    url_attributes.URL_FULL: f"{url.scheme}://{url.netloc.decode('ascii')}{path}",
                    server_attributes.SERVER_ADDRESS: url.host,
                    server_attributes.SERVER_PORT: url.port
                    or (443 if url.scheme == "https" else 80),
                }
            )
            try:
                response = await self.transport.handle_async_request(request)
            except BaseException as error:
                _set_error(span, type(error).__qualname__)
                raise
            span.set_attribute(http_attributes.HTTP_RESPONSE_STATUS_CODE, response.status_code)
            if response.status_code >= 400:
                _set_error(span, str(response.status_code))
            return response
        finally:
            span.end()

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self.transport.aclose()


_STATEMENT_SPAN = "_common_libs_span"


def trace_statements(engine: AsyncEngine) -> None:
    """A client span per statement that ``engine`` executes inside a recorded trace, named
    ``OPERATION database`` (``SELECT catalog``), with the statement as sent: its placeholders
    (``$1``), never the values bound to them.

    Statements outside a recorded trace make none: a readiness probe's ping or a poller's query
    would each start a trace of its own, and under a span that does not record (not sampled) a
    statement's span would not record either.
    """
    from sqlalchemy import event

    url = engine.url
    operation_target = f" {url.database}" if url.database else ""
    known = {
        db_attributes.DB_SYSTEM_NAME: "postgresql",
        db_attributes.DB_NAMESPACE: url.database,
        server_attributes.SERVER_ADDRESS: url.host,
        server_attributes.SERVER_PORT: url.port,
    }
    attributes = {name: value for name, value in known.items() if value is not None}

    def start(
        conn: Connection,
        cursor: Any,
        statement: str,
        parameters: Any,
        execution: ExecutionContext,
        executemany: bool,
    ) -> None:
        if not trace.get_current_span().is_recording():
            return  # outside a recorded trace: pollers and probes would each start one
        operation = statement.split(None, 1)[0].upper() if statement.strip() else "SQL"
        span = _tracer.start_span(operation + operation_target, kind=SpanKind.CLIENT)
        span.set_attributes(attributes)
        span.set_attributes(
            {
                db_attributes.DB_OPERATION_NAME: operation,
                db_attributes.DB_QUERY_TEXT: statement,
            }
        )
        setattr(execution, _STATEMENT_SPAN, span)

    def end(
        conn: Connection,
        cursor: Any,
        statement: str,
        parameters: Any,
        execution: ExecutionContext,
        executemany: bool,
    ) -> None:
        span: Span = getattr(execution, _STATEMENT_SPAN, INVALID_SPAN)
        span.end()

    def fail(failure: ExceptionContext) -> None:
        # No span when the failure came before the statement (a connection's setup).
        span: Span = getattr(failure.execution_context, _STATEMENT_SPAN, INVALID_SPAN)
        _set_error(span, type(failure.original_exception).__qualname__)
        span.end()

    sync_engine = engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", start)
    event.listen(sync_engine, "after_cursor_execute", end)
    event.listen(sync_engine, "handle_error", fail)


def _set_error(span: Span, error_type: str) -> None:
    span.set_attribute(error_attributes.ERROR_TYPE, error_type)
    span.set_status(Status(StatusCode.ERROR))
