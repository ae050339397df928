"""Small helpers the integration tests share: unique products and waiting on a condition."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
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
