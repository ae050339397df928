"""Outgoing HTTP: httpx's API over the aiohttp transport, explicit timeouts, request id forwarded.

Plain ``httpx.AsyncClient`` is slow under concurrency (encode/httpx#3215); the aiohttp transport
keeps the httpx API at about three times the throughput on one inter-service hop.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from httpx_aiohttp import AiohttpTransport

from common_libs.request_id import REQUEST_ID_HEADER, get_request_id

__all__ = ["create_http_client", "forward_request_id"]


async def forward_request_id(request: httpx.Request) -> None:
    """Request hook: pass the current request id on to the service being called."""
    request_id = get_request_id()
    if request_id is not None and REQUEST_ID_HEADER not in request.headers:
        request.headers[REQUEST_ID_HEADER] = request_id


def create_http_client(
    *,
    base_url: str,
    timeout: httpx.Timeout | float = 5.0,
    max_connections: int = 100,
    keepalive_expiry: float = 4.0,
    headers: Mapping[str, str] | None = None,
) -> httpx.AsyncClient:
    """Make the one long-lived client a service keeps per target (create it in the lifespan).

    ``keepalive_expiry`` stays below uvicorn's default keep-alive (5 s) so that the client never
    reuses a connection the server is about to close.
    """
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=keepalive_expiry,
    )
    return httpx.AsyncClient(
        base_url=base_url,
        transport=AiohttpTransport(limits=limits),
        timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
        headers=dict(headers or {}),
        event_hooks={"request": [forward_request_id]},
    )
