"""API models of stock reservations (internal endpoints for service tokens)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Self
from uuid import UUID

from common_libs.money import Money
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from app.models.common import JSON_INTEGER, hide_null_defaults

__all__ = [
    "MAX_ITEMS",
    "MAX_QUANTITY",
    "Reservation",
    "ReservationCreate",
    "ReservationItem",
    "ReservationItemRequest",
    "ReservationStatus",
]

MAX_ITEMS = 50
MAX_QUANTITY = 100
ReservationStatus = Literal["held", "committed", "released"]


class ReservationItemRequest(BaseModel):
    """One product to hold and how many."""

    model_config = ConfigDict(extra="forbid")

    product_id: UUID
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY), JSON_INTEGER]


class ReservationCreate(BaseModel):
    """``POST /inventory/reservations``: hold every item, or none of them."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=hide_null_defaults)

    reservation_id: UUID = Field(
        description="Chosen by the caller (the order id); idempotency key."
    )
    items: list[ReservationItemRequest] = Field(
        min_length=1, max_length=MAX_ITEMS, description="Distinct products."
    )
    ttl_seconds: (
        Annotated[
            int,
            Field(
                ge=1,
                le=86_400,
                description="How long the hold lasts (default and bounds are service settings: "
                "600 within 5..3600 unless configured otherwise).",
            ),
            JSON_INTEGER,
        ]
        | SkipJsonSchema[None]
    ) = None

    commit: bool = Field(
        default=False,
        description="Hold and commit in one step: the stock is sold at once and the "
        "reservation answers `committed` (a reservation of this id still held is committed). "
        "Without it the stock is held until `commit` or `release`, or its expiry.",
    )

    @model_validator(mode="after")
    def _ttl_is_not_null(self) -> Self:
        if "ttl_seconds" in self.model_fields_set and self.ttl_seconds is None:
            raise ValueError("ttl_seconds may be left out but not null")
        return self

    @model_validator(mode="after")
    def _products_are_distinct(self) -> Self:
        product_ids = [item.product_id for item in self.items]
        if len(set(product_ids)) != len(product_ids):
            raise ValueError("each product may appear only once in items")
        return self


class ReservationItem(BaseModel):
    """A held product, with the name and unit price it was reserved at."""

    product_id: UUID
    name: str
    unit_price: Money
    currency: str
    quantity: int


class Reservation(BaseModel):
    """A reservation: always the same shape, whatever its status."""

    reservation_id: UUID
    status: ReservationStatus
    expires_at: datetime
    items: list[ReservationItem]
