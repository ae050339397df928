"""Outgoing HTTP: httpx's API over the aiohttp transport, explicit timeouts, request id and
trace context forwarded, and a peer reached at several addresses (its replicas) when given them.

Plain ``httpx.AsyncClient`` is slow under concurrency (encode/httpx#3215); the aiohttp transport
keeps the httpx API at about three times the throughput on one inter-service hop. ``PeerClient``
then drops two per-request costs a client for one peer service does not need (see there).

Needs the ``http`` extra (``common-libs[http]``: aiohttp and its httpx transport).
"""

from __future__ import annotations

import functools
import itertools
import ssl
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

try:
    import aiohttp
    from httpx_aiohttp import AiohttpTransport
except ImportError as missing:
    raise ImportError(
        "common_libs.http_client needs the 'http' extra: install common-libs[http]"
    ) from missing

from common_libs.request_id import REQUEST_ID_HEADER, get_request_id
from common_libs.telemetry import TracingTransport

__all__ = [
    "FailoverTransport",
    "PeerClient",
    "create_http_client",
    "forward_request_id",
    "origin_urls",
    "tls_context",
]


_NO_JAR = "a PeerClient keeps no cookies (send a Cookie header with the request that needs one)"


class _NoCookies(httpx.Cookies):
    """A cookie jar that stays empty: ``Set-Cookie`` answers are not kept."""

    def extract_cookies(self, response: httpx.Response) -> None:
        """Keep nothing."""

    def set(self, name: str, value: str, domain: str = "", path: str = "/") -> None:
        """Refuse: a peer client sends no cookies."""
        raise TypeError(_NO_JAR)


class PeerClient(httpx.AsyncClient):
    """``httpx.AsyncClient`` for the calls of one service to one peer service.

    Two differences, both measured on one inter-service hop (about 130 µs of the caller's CPU
    per request, out of some 600 for the client's whole part of the call):

    - No cookie jar. A service calls its peers on behalf of many users at once through one
      long-lived client; a jar would send a cookie one answer set along with every later call,
      whoever it is for. ``Set-Cookie`` answers are ignored (httpx would also build
      ``urllib`` request and response copies of every exchange to look for them).
    - A path starting with ``/`` joins the base URL as text, then is parsed once: the same
      URL httpx's own merge gives (base path + relative path), without its second and third
      parse. Anything else (an absolute URL, ``//host``, a fragment, an ``httpx.URL``) takes
      httpx's own way.
    """

    def __init__(self, **kwargs: Any) -> None:
        if kwargs.get("cookies"):
            raise TypeError(_NO_JAR)
        super().__init__(**kwargs)
        base = self.base_url
        # httpx keeps base_url's path ending in "/"; a base with a query keeps httpx's merge.
        self._base_prefix = "" if not base.host or base.query else str(base).rstrip("/") + "/"

    @property
    def cookies(self) -> httpx.Cookies:
        """Always empty (see the class)."""
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        if cookies:
            raise TypeError(_NO_JAR)

    def _merge_url(self, url: httpx.URL | str) -> httpx.URL:
        if (
            self._base_prefix
            and isinstance(url, str)
            and url.startswith("/")
            and not url.startswith("//")  # an authority: httpx's own rules
            and "#" not in url
        ):
            return httpx.URL(self._base_prefix + url[1:])
        return super()._merge_url(url)


_NO_COOKIES = _NoCookies()


async def forward_request_id(request: httpx.Request) -> None:
    """Request hook: pass the current request id on to the service being called."""
    request_id = get_request_id()
    if request_id is not None and REQUEST_ID_HEADER not in request.headers:
        request.headers[REQUEST_ID_HEADER] = request_id


class FailoverTransport(httpx.AsyncBaseTransport):
    """One peer service at several origins (``http://host:port``, its replicas): each request goes
    to the next origin in turn, and to the one after when its connection could not be made.

    Only a connection that could not be made (refused, unreachable, or not made in time: nothing
    of the request was sent) moves a request on, whatever its method; any other error (a
    connection dropped or a timeout after the request went out) is raised as it came, so a
    request is never sent twice. (The aiohttp transport raises ``httpx.ConnectTimeout`` for a
    refused connection and for one dropped after the request went out alike; the aiohttp error
    it comes from tells them apart.) When no origin takes the connection, ``httpx.ConnectError``
    is raised (from the last error). This is what a Kubernetes Service does for a client in a
    cluster, where one address is enough; locally, replicas of a service listen on ports of their
    own.
    """

    def __init__(self, transport: httpx.AsyncBaseTransport, origins: Sequence[httpx.URL]) -> None:
        if not origins:
            raise ValueError("FailoverTransport needs at least one origin")
        self._transport = transport
        self._origins = tuple(origins)
        self._turn = itertools.count()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        count = len(self._origins)
        first = next(self._turn)
        refused: httpx.TransportError | None = None
        for step in range(count):
            origin = self._origins[(first + step) % count]
            request.url = request.url.copy_with(
                scheme=origin.scheme, host=origin.host, port=origin.port
            )
            request.headers["Host"] = origin.netloc.decode("ascii")
            try:
                return await self._transport.handle_async_request(request)
            except httpx.TransportError as exc:
                if not _never_connected(exc):
                    raise
                refused = exc
        origins = ", ".join(str(origin) for origin in self._origins)
        raise httpx.ConnectError(
            f"no replica took the connection: {origins}", request=request
        ) from refused

    async def aclose(self) -> None:
        await self._transport.aclose()


def _never_connected(exc: httpx.TransportError) -> bool:
    """Whether the request failed before its connection was made (so it was never sent)."""
    cause = exc.__cause__
    if isinstance(cause, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        return True
    return cause is None and isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)


def origin_urls(base_url: str) -> list[httpx.URL]:
    """The URLs of a comma-separated ``base_url`` (several: each names an origin, one path)."""
    if "," not in base_url:
        return [httpx.URL(base_url)]
    urls = [httpx.URL(part.strip()) for part in base_url.split(",")]
    if any(not url.host for url in urls) or len({url.raw_path for url in urls}) > 1:
        raise ValueError(
            f"base_url {base_url!r}: give one URL, or several that differ only in host and port"
        )
    return urls


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The verifying TLS context every client of this process shares, made on first use.

    httpx makes one per client otherwise, loading the CA bundle each time: about 17 ms and
    0.8 MiB per client at start-up (three in the order service and in the chat), for peers
    that are mostly plain HTTP inside the cluster. ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` apply
    as httpx reads them, once per process."""
    return httpx.create_ssl_context()


def create_http_client(
    *,
    base_url: str,
    timeout: httpx.Timeout | float = 5.0,
    max_connections: int = 100,
    keepalive_expiry: float = 4.0,
    headers: Mapping[str, str] | None = None,
) -> PeerClient:
    """Make the one long-lived client a service keeps per target (create it in the lifespan).

    Every call is a client span that goes out as ``traceparent``
    (:class:`~common_libs.telemetry.TracingTransport` around the aiohttp transport).

    ``keepalive_expiry`` stays below uvicorn's default keep-alive (5 s) so that the client never
    reuses a connection the server is about to close.

    ``base_url`` may list several URLs, comma-separated, that differ only in host and port (the
    replicas of one service, as ``make up`` runs them): calls then go to each in turn, and one
    whose connection is refused goes to the next (:class:`FailoverTransport`).
    """
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=keepalive_expiry,
    )
    origins = origin_urls(base_url)
    transport: httpx.AsyncBaseTransport = TracingTransport(
        AiohttpTransport(verify=tls_context(), limits=limits)
    )
    if len(origins) > 1:
        # Outside the tracing: each attempt is a client span of its own, a refused one an error.
        transport = FailoverTransport(transport, origins)
    return PeerClient(
        base_url=origins[0],
        transport=transport,
        timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
        headers=dict(headers or {}),
        event_hooks={"request": [forward_request_id]},
    )
