"""Small helpers the tests share: unique products, waiting on a condition, a stub JWKS."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


def unique(prefix: str) -> str:
    """A value no other test uses (SKUs, categories)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def product_payload(**overrides: Any) -> dict[str, Any]:
    """A valid ``POST /products`` body with a unique SKU."""
    body: dict[str, Any] = {
        "sku": unique("SKU"),
        "name": "Trail running shoe",
        "description": "Light shoe with a grippy sole for muddy trails.",
        "category": unique("cat"),
        "price": "89.90",
        "stock": 10,
    }
    body.update(overrides)
    return body


async def create_product(
    client: httpx.AsyncClient, headers: dict[str, str], **overrides: Any
) -> dict[str, Any]:
    """Create a product through the API and return it."""
    response = await client.post("/products", json=product_payload(**overrides), headers=headers)
    assert response.status_code == 201, response.text
    product: dict[str, Any] = response.json()
    return product


def reservation_body(
    *items: tuple[str, int], reservation_id: str | None = None, **extra: Any
) -> dict[str, Any]:
    """A ``POST /inventory/reservations`` body for ``(product_id, quantity)`` items."""
    return {
        "reservation_id": reservation_id or str(uuid.uuid4()),
        "items": [
            {"product_id": product_id, "quantity": quantity} for product_id, quantity in items
        ],
        **extra,
    }


async def eventually(
    condition: Callable[[], Awaitable[bool]], *, within: float = 10.0, message: str = "condition"
) -> None:
    """Poll an async condition without blocking the event loop; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} not met within {within:g} s")
        await asyncio.sleep(0.05)


@contextmanager
def serve_jwks(jwks: dict[str, Any]) -> Iterator[str]:
    """A stub of user-service's ``GET /auth/jwks`` on 127.0.0.1; yields the JWKS URL."""
    body = json.dumps(jwks).encode()

    class JwksHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = 200 if self.path == "/auth/jwks" else 404
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test output is not the place for access logs."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), JwksHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/auth/jwks"
    finally:
        server.shutdown()
        server.server_close()
