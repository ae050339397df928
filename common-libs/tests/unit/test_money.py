"""Money is a two-place decimal string on the wire, never a float; currencies are ISO 4217."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from common_libs.money import Currency, Money, format_money, to_cents_decimal


class Price(BaseModel):
    amount: Money
    currency: Currency = "USD"


@pytest.mark.parametrize(
    ("wire", "amount"),
    [
        ("19.99", Decimal("19.99")),
        ("0", Decimal("0")),
        ("19.9", Decimal("19.9")),
        ("9999999999.99", Decimal("9999999999.99")),
    ],
)
def test_decimal_strings_are_accepted(wire: str, amount: Decimal) -> None:
    assert Price.model_validate({"amount": wire}).amount == amount


def test_decimal_values_are_accepted_from_python() -> None:
    assert Price(amount=Decimal("3.50")).amount == Decimal("3.50")


@pytest.mark.parametrize(
    "wire",
    [
        pytest.param(19.99, id="float"),
        pytest.param(20, id="int"),
        pytest.param(True, id="bool"),
        pytest.param(None, id="null"),
        pytest.param("-1.00", id="negative"),
        pytest.param("1.999", id="three-decimals"),
        pytest.param("NaN", id="nan"),
        pytest.param("Infinity", id="infinity"),
        pytest.param("12345678901.00", id="too-many-digits"),
        pytest.param("19,99", id="comma"),
        pytest.param("", id="empty"),
        pytest.param(" 5.00 ", id="padded"),
        pytest.param("1e2", id="exponent"),
        pytest.param("-0", id="negative-zero"),
        pytest.param("+1.00", id="plus-sign"),
    ],
)
def test_non_decimal_strings_and_bad_amounts_are_rejected(wire: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        Price.model_validate({"amount": wire})

    assert [error["loc"] for error in refused.value.errors()] == [("amount",)]


def test_numbers_are_rejected_with_a_hint_to_send_a_string() -> None:
    with pytest.raises(ValidationError, match=r'decimal string such as "19\.99"'):
        Price.model_validate_json('{"amount": 19.99}')


def test_json_renders_two_decimal_places_as_a_string() -> None:
    price = Price.model_validate({"amount": "19.9"})

    assert price.model_dump_json() == '{"amount":"19.90","currency":"USD"}'


def test_negative_zero_computed_in_python_renders_as_zero() -> None:
    # "-0.00" would not match the pattern the schema publishes for money.
    assert Price(amount=Decimal("-0.00")).model_dump_json() == '{"amount":"0.00","currency":"USD"}'


def test_python_dump_keeps_the_decimal() -> None:
    assert Price.model_validate({"amount": "19.9"}).model_dump()["amount"] == Decimal("19.9")


def test_json_schema_describes_a_string_with_a_pattern() -> None:
    schema = Price.model_json_schema()["properties"]

    assert schema["amount"]["type"] == "string"
    assert schema["amount"]["pattern"] == r"^\d{1,10}(\.\d{1,2})?$"
    assert schema["currency"]["pattern"] == "^[A-Z]{3}$"


@pytest.mark.parametrize("code", ["USD", "EUR", "JPY"])
def test_three_capital_letters_are_a_currency(code: str) -> None:
    assert Price.model_validate({"amount": "1", "currency": code}).currency == code


@pytest.mark.parametrize("code", ["usd", "US", "USDT", "U$D", ""])
def test_other_currency_codes_are_rejected(code: str) -> None:
    with pytest.raises(ValidationError):
        Price.model_validate({"amount": "1", "currency": code})


@pytest.mark.parametrize(
    ("value", "rounded"),
    [
        (Decimal("0.125"), Decimal("0.12")),
        (Decimal("0.135"), Decimal("0.14")),
        (Decimal("2"), Decimal("2.00")),
    ],
)
def test_rounding_to_cents_is_bankers_rounding(value: Decimal, rounded: Decimal) -> None:
    assert str(to_cents_decimal(value)) == str(rounded)


def test_format_money_always_shows_two_places() -> None:
    assert [format_money(Decimal(v)) for v in ("0", "7.5", "1234.567")] == [
        "0.00",
        "7.50",
        "1234.57",
    ]
