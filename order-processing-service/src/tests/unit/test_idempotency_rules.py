"""The same request, a different body, a request in flight, and replays of stored answers."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from app.db.idempotency_repository import KeyRecord
from app.models.order_models import OrderCreate
from app.services.errors import (
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    OutOfStock,
    UnknownProduct,
    stored_problem,
)
from app.services.idempotency import replay, request_hash
from tests.support.orders import ADDRESS, order_body

PRODUCT = uuid.UUID("7d2c3a8e-8a5e-4c55-9d1f-1f1f2f4e6a01")


def _hash(body: dict[str, Any]) -> str:
    return request_hash(request=OrderCreate.model_validate(body))


def _record(**changes: Any) -> KeyRecord:
    values: dict[str, Any] = {
        "request_hash": "h",
        "order_id": uuid.uuid4(),
        "response_status": None,
        "response_body": None,
        **changes,
    }
    return KeyRecord(**values)


def test_hash_ignores_field_order_and_an_explicit_null() -> None:
    body = order_body((PRODUCT, 2))
    reordered = {
        "shipping_address": {**dict(reversed(ADDRESS.items())), "line2": None},
        "items": [{"quantity": 2, "product_id": str(PRODUCT).upper()}],
    }

    assert _hash(body) == _hash(reordered)


def test_hash_changes_with_the_quantity() -> None:
    assert _hash(order_body((PRODUCT, 1))) != _hash(order_body((PRODUCT, 2)))


def test_different_hash_is_refused_with_422() -> None:
    with pytest.raises(IdempotencyKeyReused):
        replay(record=_record(request_hash="other"), hashed_request="h")


def test_claim_without_an_answer_is_in_flight() -> None:
    with pytest.raises(IdempotencyKeyInFlight) as in_flight:
        replay(record=_record(), hashed_request="h")

    assert in_flight.value.status == 409
    assert in_flight.value.type == "urn:fleet:common:idempotency-key-in-flight"
    assert in_flight.value.headers == {"Retry-After": "1"}


def test_stored_refusal_is_raised_again_with_its_product() -> None:
    refusal = OutOfStock.for_product(PRODUCT)
    record = _record(response_status=409, response_body=stored_problem(refusal))

    with pytest.raises(OutOfStock) as replayed:
        replay(record=record, hashed_request="h")

    assert replayed.value.status == 409
    assert replayed.value.detail == refusal.detail
    assert replayed.value.extra == {"product_id": str(PRODUCT)}


def test_stored_unknown_product_replays_as_422() -> None:
    body = stored_problem(UnknownProduct.for_product(PRODUCT))

    with pytest.raises(UnknownProduct) as replayed:
        replay(record=_record(response_status=422, response_body=body), hashed_request="h")

    assert replayed.value.status == 422
