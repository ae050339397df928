"""The caller's orders as this service reads them from order-processing-service's public API
(``GET /orders``, ``GET /orders/{id}``), for the assistant's order tools.

Only what the assistant may tell the caller is kept: an order's shipping address (a name, where
someone lives) is personal data it does not need, so these models have no field for it and
ignore it, and it never reaches the model. Prices and names are null until the catalog has
priced an order (a ``pending`` or ``failed`` one), as the API says.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from pydantic import AwareDatetime, BaseModel, ConfigDict

__all__ = ["ORDER_STATUSES", "OrderItemView", "OrderPage", "OrderView"]

ORDER_STATUSES = ("pending", "confirmed", "failed", "cancelled", "shipped", "delivered")
"""The statuses ``GET /orders?status=`` filters by (API.md)."""


class OrderItemView(BaseModel):
    """One line of an order: the product, its name and price at the time of the order."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    product_id: uuid.UUID
    name: str | None
    unit_price: Decimal | None
    quantity: int
    line_total: Decimal | None


class OrderView(BaseModel):
    """An order as the assistant sees it: deliberately without its ``shipping_address``.

    Unknown fields are ignored, so the address the API sends is dropped while parsing: personal
    data the assistant does not need never reaches the model.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: uuid.UUID
    user_id: str
    # Text, not the six known statuses: a status the orders service adds later still parses.
    status: str
    items: list[OrderItemView]
    total: Decimal | None
    currency: str | None
    created_at: AwareDatetime
    updated_at: AwareDatetime


class OrderPage(BaseModel):
    """One page of the caller's orders (``GET /orders``), newest first."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    items: list[OrderView]
    next_cursor: str | None = None
