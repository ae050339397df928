"""Pricing an order from the catalog's reservation: Decimal totals, one currency, same items."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from app.clients.catalog_client import Reservation, ReservationUnusable
from app.services.errors import MixedCurrencies
from app.services.reservation import price_reservation

PEN, INK = uuid.uuid4(), uuid.uuid4()


def _reservation(*lines: tuple[uuid.UUID, str, str, int]) -> Reservation:
    items: list[dict[str, Any]] = [
        {"product_id": str(p), "name": "x", "unit_price": price, "currency": cur, "quantity": q}
        for p, price, cur, q in lines
    ]
    return Reservation.model_validate(
        {"reservation_id": str(uuid.uuid4()), "status": "held", "items": items}
    )


def test_total_is_exact_in_decimal() -> None:
    reservation = _reservation((PEN, "0.10", "EUR", 3), (INK, "0.20", "EUR", 1))

    pricing = price_reservation(reservation=reservation, requested=[(PEN, 3), (INK, 1)])

    assert pricing.total == Decimal("0.50")
    assert pricing.currency == "EUR"
    assert [item.unit_price for item in pricing.items] == [Decimal("0.10"), Decimal("0.20")]


def test_two_currencies_are_refused() -> None:
    reservation = _reservation((PEN, "1.00", "USD", 1), (INK, "1.00", "EUR", 1))

    with pytest.raises(MixedCurrencies):
        price_reservation(reservation=reservation, requested=[(PEN, 1), (INK, 1)])


def test_reservation_holding_other_quantities_is_unusable() -> None:
    reservation = _reservation((PEN, "1.00", "USD", 2))

    with pytest.raises(ReservationUnusable):
        price_reservation(reservation=reservation, requested=[(PEN, 1)])


def test_float_prices_from_the_catalog_are_refused() -> None:
    with pytest.raises(ValueError, match="decimal string"):
        Reservation.model_validate(
            {
                "reservation_id": str(uuid.uuid4()),
                "status": "held",
                "items": [
                    {
                        "product_id": str(PEN),
                        "name": "x",
                        "unit_price": 0.1,
                        "currency": "USD",
                        "quantity": 1,
                    }
                ],
            }
        )
