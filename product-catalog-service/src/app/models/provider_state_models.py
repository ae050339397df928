"""API models of provider states: what the pact verifier sends before each interaction."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from common_libs.money import Money
from pydantic import BaseModel, ConfigDict, Field

from app.models.reservation_models import MAX_QUANTITY

__all__ = [
    "NoProduct",
    "NoReservation",
    "ProductInStock",
    "ProviderStateChange",
    "ReservationHeld",
]


class ProviderStateChange(BaseModel):
    """``POST /_pact/provider-states``: set up (or tear down) one state a pact names.

    ``state`` is empty for an interaction that names none (the verifier still calls).
    """

    model_config = ConfigDict(extra="forbid")

    state: str = Field(max_length=200)
    params: dict[str, Any] = Field(default_factory=dict)
    action: Literal["setup", "teardown"] = "setup"


class ProductInStock(BaseModel):
    """Parameters of ``a product is in stock``: a new live product with this stock."""

    model_config = ConfigDict(extra="forbid")

    stock: int = Field(default=10, ge=0, le=1_000_000)
    name: str = Field(default="Contract test product", min_length=1, max_length=200)
    description: str = Field(default="Made for a consumer's contract.", max_length=5000)
    price: Money = Decimal("19.99")


class ReservationHeld(BaseModel):
    """Parameters of ``a reservation is held``: one product, ``quantity`` of it held."""

    model_config = ConfigDict(extra="forbid")

    quantity: int = Field(default=1, ge=1, le=MAX_QUANTITY)


class NoProduct(BaseModel):
    """Parameters of ``no product has the id``."""

    model_config = ConfigDict(extra="forbid")

    product_id: UUID


class NoReservation(BaseModel):
    """Parameters of ``no reservation has the id``."""

    model_config = ConfigDict(extra="forbid")

    reservation_id: UUID
