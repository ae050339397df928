"""API models: what the service accepts and refuses before any rule or query runs."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from app.models.product_models import ProductCreate, ProductUpdate
from app.models.reservation_models import ReservationCreate, ReservationItemRequest

VALID_PRODUCT: dict[str, Any] = {
    "sku": "LAP-13",
    "name": "Laptop",
    "description": "",
    "category": "computers",
    "price": "999.00",
    "stock": 3,
}


def test_product_price_is_accepted_only_as_a_decimal_string() -> None:
    assert ProductCreate.model_validate(VALID_PRODUCT).price == Decimal("999.00")
    with pytest.raises(ValidationError):
        ProductCreate.model_validate({**VALID_PRODUCT, "price": 999.0})


@pytest.mark.parametrize("stock", ["3", True, 2.5, -1, 1_000_000_001])
def test_stock_must_be_a_json_integer_in_range(stock: object) -> None:
    with pytest.raises(ValidationError):
        ProductCreate.model_validate({**VALID_PRODUCT, "stock": stock})


def test_integral_float_counts_as_an_integer_as_in_json_schema() -> None:
    assert ProductCreate.model_validate({**VALID_PRODUCT, "stock": 3.0}).stock == 3


def test_update_reports_only_the_fields_sent() -> None:
    update = ProductUpdate.model_validate({"price": "5", "stock": 0})

    assert update.changes() == {"price": Decimal("5"), "stock": 0}


def test_update_refuses_explicit_nulls() -> None:
    with pytest.raises(ValidationError, match="not null: name"):
        ProductUpdate.model_validate({"name": None})


def test_update_schema_publishes_no_null() -> None:
    schema = ProductUpdate.model_json_schema()

    assert all("null" not in str(field) for field in schema["properties"].values())


def test_reservation_refuses_the_same_product_twice() -> None:
    product_id = str(uuid.uuid4())
    items = [{"product_id": product_id, "quantity": 1}, {"product_id": product_id, "quantity": 2}]

    with pytest.raises(ValidationError, match="only once"):
        ReservationCreate.model_validate({"reservation_id": str(uuid.uuid4()), "items": items})


@pytest.mark.parametrize("quantity", [0, 101, "1"])
def test_reservation_quantity_is_1_to_100(quantity: object) -> None:
    with pytest.raises(ValidationError):
        ReservationItemRequest.model_validate(
            {"product_id": str(uuid.uuid4()), "quantity": quantity}
        )


def test_reservation_ttl_may_be_left_out_but_not_null() -> None:
    body = {
        "reservation_id": str(uuid.uuid4()),
        "items": [{"product_id": str(uuid.uuid4()), "quantity": 1}],
    }

    assert ReservationCreate.model_validate(body).ttl_seconds is None
    with pytest.raises(ValidationError, match="not null"):
        ReservationCreate.model_validate({**body, "ttl_seconds": None})
