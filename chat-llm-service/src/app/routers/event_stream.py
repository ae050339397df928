"""The streaming response of the chat: server-sent events that no proxy buffers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

__all__ = ["ClosableEvents", "EventStreamResponse"]

STREAM_HEADERS = {
    "Cache-Control": "no-cache",
    # nginx (the gateway, an ingress) passes the events on as they come instead of buffering.
    "X-Accel-Buffering": "no",
}


class ClosableEvents(Protocol):
    """Encoded events that hold resources until closed."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class EventStreamResponse(StreamingResponse):
    """``text/event-stream`` over events that are always closed when the response ends.

    Starlette cancels the sending task when the client disconnects; closing the events
    afterwards guarantees their clean-up (closing the upstream stream, storing the partial
    reply) runs now, at whatever point they stopped, and even if sending never began.
    """

    media_type = "text/event-stream"

    def __init__(self, events: ClosableEvents) -> None:
        super().__init__(events, headers=STREAM_HEADERS)
        self._events = events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._events.aclose()
