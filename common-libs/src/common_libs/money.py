"""Money on the wire: a decimal string with two places, never a float; ISO 4217 currencies."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PlainSerializer, StringConstraints, WithJsonSchema

__all__ = ["CENT", "Currency", "Money", "format_money", "to_cents_decimal"]

CENT = Decimal("0.01")
_MONEY_PATTERN = r"^\d{1,10}(\.\d{1,2})?$"


def to_cents_decimal(value: Decimal) -> Decimal:
    """Round a decimal to whole cents (banker's rounding)."""
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


def format_money(value: Decimal) -> str:
    """Render an amount as a string with exactly two decimal places."""
    cents = to_cents_decimal(value)
    # Never "-0.00": the pattern published for money has no sign.
    return f"{cents.copy_abs() if cents.is_zero() else cents:.2f}"


def _require_decimal_string(value: Any) -> Any:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, str) and re.fullmatch(_MONEY_PATTERN, value):
        return value
    raise ValueError('money must be a decimal string such as "19.99" (at most two decimals)')


Money = Annotated[
    Decimal,
    BeforeValidator(_require_decimal_string),
    Field(ge=0, max_digits=12, decimal_places=2, allow_inf_nan=False),
    PlainSerializer(format_money, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": _MONEY_PATTERN, "examples": ["19.99"]}),
]
"""A non-negative amount: accepted as ``"19.99"``, rendered as ``"19.99"``."""

Currency = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{3}$"),
    WithJsonSchema({"type": "string", "pattern": "^[A-Z]{3}$", "examples": ["USD"]}),
]
"""An ISO 4217 alphabetic currency code such as ``USD``."""
