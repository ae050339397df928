"""Handles on the test's stub servers, catalog products and orders, and helpers to read what the
service streams.

The OpenAI-compatible test server and the uvicorn processes come from ``common_libs.testing``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from common_libs.testing import Failure

SERVICE_ROOT = Path(__file__).resolve().parents[2]


class CatalogStub:
    """Set the stub catalog's products and read the page requests it received."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    async def _call(self, method: str, path: str, body: object = None) -> Any:
        async with httpx.AsyncClient(base_url=self.base_url) as http:
            response = await http.request(method, path, json=body)
            response.raise_for_status()
            return response.json()

    async def reset(self) -> None:
        """No products, no requests, answering normally, holding nothing."""
        await self._call("POST", "/_stub/reset")

    async def set_products(self, products: list[dict[str, Any]]) -> None:
        """Replace the catalog's products (listed in this order)."""
        await self._call("PUT", "/_stub/products", products)

    async def set_mode(self, mode: str) -> None:
        """``ok`` or ``error`` (500)."""
        await self._call("PUT", "/_stub/mode", {"mode": mode})

    async def hold(self, *, after: int) -> None:
        """Answer ``after`` page requests, then hold every later one until :meth:`release`."""
        await self._call("PUT", "/_stub/hold", {"after": after})

    async def release(self) -> None:
        """Answer the held requests and hold no more."""
        await self._call("POST", "/_stub/release")

    async def requests(self) -> list[dict[str, Any]]:
        """The ``{limit, cursor}`` of every page request received."""
        requests: list[dict[str, Any]] = (await self._call("GET", "/_stub/requests"))["requests"]
        return requests

    async def held(self) -> int:
        """How many page requests were held."""
        held: int = (await self._call("GET", "/_stub/requests"))["held"]
        return held


class OrdersStub:
    """Set the stub orders service's orders, make it fail, and read the requests it received."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    async def _call(self, method: str, path: str, body: object = None) -> Any:
        async with httpx.AsyncClient(base_url=self.base_url) as http:
            response = await http.request(method, path, json=body)
            response.raise_for_status()
            return response.json()

    async def reset(self) -> None:
        """No orders, no requests, answering normally (held reads answer first)."""
        await self._call("POST", "/_stub/reset")

    async def set_orders(self, orders: list[dict[str, Any]]) -> None:
        """Replace the orders (each listed to its ``user_id`` only, in this order)."""
        await self._call("PUT", "/_stub/orders", orders)

    async def set_mode(self, mode: str, *, status: int = 500) -> None:
        """``ok``; ``error`` (every read answers ``status``); ``bad_body`` (200, not JSON);
        ``hang`` (every read waits for :meth:`release`)."""
        await self._call("PUT", "/_stub/mode", {"mode": mode, "status": status})

    async def release(self) -> None:
        """Let the held reads answer."""
        await self._call("POST", "/_stub/release")

    async def requests(self) -> list[dict[str, Any]]:
        """The ``{method, path, query, authorization}`` of every read received."""
        requests: list[dict[str, Any]] = (await self._call("GET", "/_stub/requests"))["requests"]
        return requests


def failing(status: int) -> Failure:
    """An answer ``status``; the SDK waits only 10 ms before retrying it."""
    return Failure(status, headers={"retry-after-ms": "10"})


def product(
    name: str,
    *,
    sku: str | None = None,
    price: str = "10.00",
    description: str = "",
    category: str = "test",
    stock: int = 5,
) -> dict[str, Any]:
    """A product as the catalog's API renders it (and its events carry it), with a new id."""
    product_id = uuid.uuid4()
    return {
        "id": str(product_id),
        "sku": sku or f"SKU-{product_id.hex[:8]}",
        "name": name,
        "description": description,
        "category": category,
        "price": price,
        "currency": "USD",
        "stock_available": stock,
        "created_at": "2026-11-26T10:00:00Z",
        "updated_at": "2026-11-26T10:00:00Z",
    }


def order(
    user_id: str,
    *,
    status: str = "confirmed",
    lines: tuple[tuple[str, str, int], ...] = (("Trail shoe", "89.90", 1),),
    created_at: str = "2026-11-26T10:00:00Z",
) -> dict[str, Any]:
    """An order of ``user_id`` as the orders API renders it (shipping address included), with a
    new id; ``lines`` are ``(name, unit_price, quantity)``, priced unless the order is pending
    or failed (then names and prices are null, as the API sends them)."""
    is_priced = status not in ("pending", "failed")
    items = []
    total = Decimal("0")
    for name, unit_price, quantity in lines:
        line_total = Decimal(unit_price) * quantity
        total += line_total
        items.append(
            {
                "product_id": str(uuid.uuid4()),
                "name": name if is_priced else None,
                "unit_price": unit_price if is_priced else None,
                "quantity": quantity,
                "line_total": f"{line_total:.2f}" if is_priced else None,
            }
        )
    return {
        "id": str(uuid.uuid4()),
        "user_id": user_id,
        "status": status,
        "items": items,
        "total": f"{total:.2f}" if is_priced else None,
        "currency": "USD" if is_priced else None,
        "shipping_address": {
            "name": "Ada Lovelace",
            "line1": "12 Analytical Row",
            "line2": None,
            "city": "London",
            "postal_code": "NW1 6XE",
            "country": "GB",
        },
        "created_at": created_at,
        "updated_at": created_at,
    }


def parse_events(text: str) -> list[tuple[str, str]]:
    """``(event, data)`` pairs of a text/event-stream body (event ``message`` when unnamed)."""
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        events.append((name, "\n".join(data)))
    return events


async def next_event(lines: AsyncIterator[str]) -> tuple[str, str]:
    """Read one server-sent event from a response's line iterator."""
    name, data = "message", []
    async for line in lines:
        if not line:
            if data:
                return name, "\n".join(data)
            continue
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            data.append(line[len("data: ") :])
    raise EOFError("the stream ended")
