"""API models of provider states: what the pact verifier sends before each interaction."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from common_libs.money import Money
from pydantic import BaseModel, ConfigDict, Field

from app.models.order_models import MAX_QUANTITY

__all__ = ["AnotherCustomerHasOrder", "CustomerHasOrder", "ProviderStateChange"]


class ProviderStateChange(BaseModel):
    """``POST /_pact/provider-states``: set up (or tear down) one state a pact names.

    ``state`` is empty for an interaction that names none (the verifier still calls).
    """

    model_config = ConfigDict(extra="forbid")

    state: str = Field(max_length=200)
    params: dict[str, Any] = Field(default_factory=dict)
    action: Literal["setup", "teardown"] = "setup"


class AnotherCustomerHasOrder(BaseModel):
    """Parameters of ``another customer has an order``: a confirmed order of one line, of a user
    no token of the verification names."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="Contract test product", min_length=1, max_length=200)
    unit_price: Money = Decimal("19.99")
    quantity: int = Field(default=2, ge=1, le=MAX_QUANTITY)


class CustomerHasOrder(AnotherCustomerHasOrder):
    """Parameters of ``a customer has an order``: the same order, of the user ``user_id`` (the
    ``sub`` of the token the verification sends)."""

    user_id: str = Field(min_length=1, max_length=128)
