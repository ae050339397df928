"""Request ids: a pure ASGI middleware, the context variable it sets, and the header's rules."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "REQUEST_ID_HEADER",
    "TRACE_HEADERS",
    "RequestIdMiddleware",
    "get_request_id",
    "get_trace_headers",
    "is_sane_request_id",
    "new_request_id",
    "request_id_var",
]

REQUEST_ID_HEADER = "X-Request-ID"
_HEADER_KEY = REQUEST_ID_HEADER.lower().encode("latin-1")
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")

# W3C Trace Context: kept from the incoming request so that what the request causes (an event)
# carries it on.
TRACE_HEADERS = ("traceparent", "tracestate")
_TRACE_KEYS = frozenset(name.encode("latin-1") for name in TRACE_HEADERS)

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
trace_headers_var: ContextVar[tuple[tuple[str, str], ...]] = ContextVar("trace_headers", default=())


def get_request_id() -> str | None:
    """Return the id of the request being handled, or None outside a request."""
    return request_id_var.get()


def get_trace_headers() -> tuple[tuple[str, str], ...]:
    """Return the ``traceparent``/``tracestate`` headers of the request being handled, if any."""
    return trace_headers_var.get()


def new_request_id() -> str:
    """Make a fresh request id (32 hex characters)."""
    return uuid.uuid4().hex


def is_sane_request_id(value: str) -> bool:
    """Tell whether a client-sent id may be kept: 1..128 characters of [A-Za-z0-9._-]."""
    return _SANE_REQUEST_ID.fullmatch(value) is not None


class RequestIdMiddleware:
    """Keep a sane incoming ``X-Request-ID`` (else make one), expose it, and echo it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        incoming, trace_headers = _incoming_headers(scope)
        request_id = incoming or new_request_id()
        encoded = request_id.encode("latin-1")

        async def send_with_request_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != _HEADER_KEY
                ]
                headers.append((_HEADER_KEY, encoded))
                message["headers"] = headers
            await send(message)

        # Not reset afterwards on purpose: Starlette renders unhandled errors in its outermost
        # ServerErrorMiddleware, outside this one but in the same task, and that 500 answer must
        # carry the id too. ASGI servers run each request in a task of its own, so nothing leaks.
        request_id_var.set(request_id)
        trace_headers_var.set(trace_headers)
        await self.app(scope, receive, send_with_request_id)


def _incoming_headers(scope: Scope) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """The sane incoming request id, if any, and the trace context headers (one pass)."""
    request_id: str | None = None
    seen_request_id = False
    trace: tuple[tuple[str, str], ...] = ()
    for key, value in scope["headers"]:
        lowered = key.lower()
        if lowered == _HEADER_KEY:
            if not seen_request_id:  # the first one counts
                seen_request_id = True
                candidate = value.decode("latin-1")
                request_id = candidate if is_sane_request_id(candidate) else None
        elif lowered in _TRACE_KEYS and len(value) <= 512:
            trace = (*trace, (lowered.decode("latin-1"), value.decode("latin-1")))
    return request_id, trace
