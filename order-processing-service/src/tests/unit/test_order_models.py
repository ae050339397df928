"""What POST /orders accepts, and how orders render (money as two-place strings)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from app.models.order_models import OrderCreate, OrderItemOut, OrderOut, ShippingAddress
from tests.support.orders import ADDRESS, order_body


def _body(**address_changes: Any) -> dict[str, Any]:
    body = order_body((uuid.uuid4(), 1))
    body["shipping_address"] = {**ADDRESS, **address_changes}
    return body


def test_valid_order_is_accepted() -> None:
    request = OrderCreate.model_validate(_body(line2="Flat 3"))

    assert request.shipping_address.line2 == "Flat 3"


def test_unknown_address_field_is_refused() -> None:
    with pytest.raises(ValidationError, match="Extra inputs"):
        OrderCreate.model_validate(_body(is_admin=True))


def test_control_characters_in_the_address_are_refused() -> None:
    with pytest.raises(ValidationError):
        OrderCreate.model_validate(_body(city="Lon\x00don"))


def test_blank_address_line_is_refused() -> None:
    with pytest.raises(ValidationError):
        OrderCreate.model_validate(_body(line1="   "))


def test_order_renders_money_as_strings_with_two_places() -> None:
    order = OrderOut(
        id=uuid.uuid4(),
        user_id="u-1",
        status="confirmed",
        items=[
            OrderItemOut(
                product_id=uuid.uuid4(),
                name="Pen",
                unit_price=Decimal("1.5"),
                quantity=3,
                line_total=Decimal("4.5"),
            )
        ],
        total=Decimal("12345678901234.5"),
        currency="USD",
        shipping_address=ShippingAddress.model_validate(ADDRESS),
        created_at=datetime(2026, 11, 26, 10, 0, tzinfo=UTC),
        updated_at=datetime(2026, 11, 26, 10, 0, tzinfo=UTC),
    )

    rendered = order.model_dump(mode="json")

    assert rendered["total"] == "12345678901234.50"
    assert rendered["items"][0]["unit_price"] == "1.50"
    assert rendered["items"][0]["line_total"] == "4.50"
    assert rendered["created_at"] == "2026-11-26T10:00:00Z"
