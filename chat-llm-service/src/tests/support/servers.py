"""Handles on the test's stub servers and helpers to read what the service streams.

The OpenAI-compatible test server and the uvicorn processes come from ``common_libs.testing``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from common_libs.testing import Failure

SERVICE_ROOT = Path(__file__).resolve().parents[2]


class CatalogStub:
    """Set the stub catalog's products and read the searches it received."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    async def reset(self) -> None:
        """No products, no queries, answering normally."""
        async with httpx.AsyncClient(base_url=self.base_url) as http:
            (await http.post("/_stub/reset")).raise_for_status()

    async def set_products(self, products: list[dict[str, Any]]) -> None:
        """Replace the catalog's products."""
        async with httpx.AsyncClient(base_url=self.base_url) as http:
            (await http.put("/_stub/products", json=products)).raise_for_status()

    async def set_mode(self, mode: str) -> None:
        """``ok``, ``error`` (500) or ``slow`` (stalls)."""
        async with httpx.AsyncClient(base_url=self.base_url) as http:
            (await http.put("/_stub/mode", json={"mode": mode})).raise_for_status()

    async def queries(self) -> list[dict[str, Any]]:
        """The ``{q, limit}`` of every search received."""
        async with httpx.AsyncClient(base_url=self.base_url) as http:
            response = await http.get("/_stub/queries")
            response.raise_for_status()
            queries: list[dict[str, Any]] = response.json()
            return queries


def failing(status: int) -> Failure:
    """An answer ``status``; the SDK waits only 10 ms before retrying it."""
    return Failure(status, headers={"retry-after-ms": "10"})


def product(
    name: str, *, sku: str, price: str, description: str = "", stock: int = 5
) -> dict[str, Any]:
    """A product as the catalog's API renders it."""
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, sku)),
        "sku": sku,
        "name": name,
        "description": description,
        "category": "test",
        "price": price,
        "currency": "USD",
        "stock_available": stock,
        "created_at": "2026-11-26T10:00:00Z",
        "updated_at": "2026-11-26T10:00:00Z",
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
