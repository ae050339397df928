"""Orders on the wire: what a client sends (unknown fields refused) and what it gets back."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self, get_args

from common_libs.money import Currency, Money, format_money
from common_libs.text_inputs import WHITESPACE
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)

if TYPE_CHECKING:
    from app.db.order_repository import OrderRecord

__all__ = [
    "MAX_ITEMS",
    "MAX_QUANTITY",
    "Amount",
    "OrderCreate",
    "OrderItemIn",
    "OrderItemOut",
    "OrderOut",
    "OrderState",
    "OrderStatus",
    "ShippingAddress",
    "StatusChange",
]

MAX_ITEMS = 50
MAX_QUANTITY = 100

OrderStatus = Literal["pending", "confirmed", "failed", "cancelled", "shipped", "delivered"]

# Printable text with at least one visible character: no control characters (PostgreSQL's
# JSONB cannot hold NUL, and no address needs a tab or a line break).
_TEXT_PATTERN = rf"^[^\x00-\x1f\x7f]*[^{WHITESPACE}\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"


def _text(max_length: int) -> object:
    return StringConstraints(min_length=1, max_length=max_length, pattern=_TEXT_PATTERN)


Amount = Annotated[
    Decimal,
    PlainSerializer(format_money, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^\d{1,14}\.\d{2}$", "examples": ["39.98"]}),
]
"""A computed amount (line total, order total): a string with exactly two decimal places."""

_MONEY_SCHEMA = next(meta for meta in get_args(Money) if isinstance(meta, WithJsonSchema))
StoredMoney = Annotated[
    Decimal, PlainSerializer(format_money, return_type=str, when_used="json"), _MONEY_SCHEMA
]
"""A price the order holds (the catalog's, stored in a ``NUMERIC(12, 2)`` column): shown and
published as ``Money``, without ``Money``'s checks of a client's input, which cost about 4 µs a
line on every order answered and every order event."""


class OrderItemIn(BaseModel):
    """One requested line: a product and how many; prices come from the catalog, never here."""

    model_config = ConfigDict(extra="forbid")

    product_id: uuid.UUID
    quantity: int = Field(ge=1, le=MAX_QUANTITY)


class ShippingAddress(BaseModel):
    """Where the order goes."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, _text(200)]
    line1: Annotated[str, _text(200)]
    line2: Annotated[str | None, _text(200)] = None
    city: Annotated[str, _text(100)]
    postal_code: Annotated[str, _text(20)]
    country: Annotated[str, _text(100)]


class OrderCreate(BaseModel):
    """The body of ``POST /orders``: 1..50 distinct products, each 1..100 times."""

    model_config = ConfigDict(extra="forbid")

    items: list[OrderItemIn] = Field(
        min_length=1,
        max_length=MAX_ITEMS,
        description=f"1..{MAX_ITEMS} lines, each product at most once (add up its quantities).",
    )
    shipping_address: ShippingAddress

    @field_validator("items")
    @classmethod
    def _products_are_distinct(cls, items: list[OrderItemIn]) -> list[OrderItemIn]:
        if len({item.product_id for item in items}) != len(items):
            raise ValueError("each product may appear only once; add up the quantities")
        return items


class StatusChange(BaseModel):
    """The body of ``PATCH /orders/{id}/status``."""

    model_config = ConfigDict(extra="forbid")

    status: OrderStatus


class OrderItemOut(BaseModel):
    """One order line; name and prices are null until the catalog has priced the order."""

    product_id: uuid.UUID
    name: str | None
    unit_price: StoredMoney | None
    quantity: int
    line_total: Amount | None


# The API's order (OrderOut) is this state plus the address, so the two cannot drift apart, and
# an event, which carries the state, never carries personal data (a name, where someone lives).
class OrderState(BaseModel):
    """An order as `GET /orders/{id}` returns it, without its shipping address."""

    id: uuid.UUID
    user_id: str
    status: OrderStatus
    items: list[OrderItemOut]
    total: Amount | None
    currency: Currency | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_record(cls, record: OrderRecord) -> Self:
        """The state of a stored order (line totals computed, never stored)."""
        return cls.model_validate(_state_fields(record))


class OrderOut(OrderState):
    """An order as clients see it."""

    shipping_address: ShippingAddress

    @classmethod
    def from_record(cls, record: OrderRecord) -> Self:
        """The API view of a stored order (line totals computed, never stored)."""
        return cls.model_validate(
            {**_state_fields(record), "shipping_address": record.shipping_address}
        )


# Plain values, validated in one call (about a third cheaper than building each line's model).
def _state_fields(record: OrderRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "user_id": record.user_id,
        "status": record.status,
        "items": [
            {
                "product_id": item.product_id,
                "name": item.name,
                "unit_price": item.unit_price,
                "quantity": item.quantity,
                "line_total": None if item.unit_price is None else item.unit_price * item.quantity,
            }
            for item in record.items
        ],
        "total": record.total,
        "currency": record.currency,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }
