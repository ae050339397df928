"""Raw HTTP/1.1 requests: the request target goes on the wire exactly as written.

httpx (like every browser) normalises "/api/../health" to "/health" before sending it; the gateway
must be tested with what an attacker would really send, so these requests use http.client. Bytes
that http.client itself refuses to send (control characters in a header value, raw non-ASCII in
the target) go through a plain socket.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["RawResponse", "raw_exchange", "raw_request"]


@dataclass(frozen=True)
class RawResponse:
    """Status, headers (repeated ones kept) and body of one answer."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header_values(self, name: str) -> list[str]:
        """Every value of header ``name``, in order."""
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def header(self, name: str) -> str | None:
        """The single value of header ``name`` (None when absent; an error when repeated)."""
        values = self.header_values(name)
        assert len(values) <= 1, f"{name} repeated: {values}"
        return values[0] if values else None

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


def raw_request(
    port: int,
    method: str,
    target: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> RawResponse:
    """Send one request to 127.0.0.1:``port`` with ``target`` untouched and read the answer."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest(method, target, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return RawResponse(
            status=response.status, headers=response.getheaders(), body=response.read()
        )
    finally:
        connection.close()


def raw_exchange(port: int, request: bytes) -> RawResponse:
    """Send ``request`` to 127.0.0.1:``port`` byte for byte and read the one answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return RawResponse(
            status=response.status, headers=response.getheaders(), body=response.read()
        )
