"""Small helpers to place and inspect orders over HTTP."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

ADDRESS: dict[str, Any] = {
    "name": "Ada Lovelace",
    "line1": "12 Analytical Row",
    "city": "London",
    "postal_code": "NW1 6XE",
    "country": "GB",
}


@dataclass(frozen=True)
class Caller:
    """Someone calling the API with a real signed token."""

    subject: str
    headers: dict[str, str]


def order_body(*items: tuple[uuid.UUID, int]) -> dict[str, Any]:
    """A valid ``POST /orders`` body for these (product, quantity) pairs."""
    return {
        "items": [{"product_id": str(product), "quantity": qty} for product, qty in items],
        "shipping_address": ADDRESS,
    }


async def place(
    client: httpx.AsyncClient,
    caller: Caller,
    body: dict[str, Any],
    *,
    key: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """``POST /orders`` with a fresh Idempotency-Key unless one is given (and any ``headers``)."""
    sent = {**caller.headers, "Idempotency-Key": key or str(uuid.uuid4()), **(headers or {})}
    return await client.post("/orders", json=body, headers=sent)
