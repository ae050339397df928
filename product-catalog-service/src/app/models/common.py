"""Pieces the API models share: text patterns and JSON-schema tweaks."""

from __future__ import annotations

from typing import Any

from common_libs.text_inputs import WHITESPACE
from pydantic import BeforeValidator

__all__ = ["JSON_INTEGER", "NO_NUL", "VISIBLE", "hide_null_defaults"]

# PostgreSQL text cannot hold NUL, and a lone surrogate is not text: both are refused by these.
NO_NUL = r"^[^\x00]*$"
# Not blank: at least one visible character (whitespace as every regex engine counts it).
VISIBLE = rf"^[{WHITESPACE}]*[^{WHITESPACE}\x00][^\x00]*$"


def hide_null_defaults(schema: dict[str, Any]) -> None:
    """Optional fields may be left out but not sent as null: publish no ``default: null``."""
    for field_schema in schema.get("properties", {}).values():
        if field_schema.get("default", ...) is None:
            del field_schema["default"]


def _json_number(value: Any) -> Any:
    """Refuse what JSON Schema's ``integer`` refuses: strings and booleans (``5.0`` is fine)."""
    if isinstance(value, str | bool):
        raise ValueError("must be a JSON integer")
    return value


JSON_INTEGER = BeforeValidator(_json_number)
"""Put last in ``Annotated[int, Field(...), JSON_INTEGER]``: ``5`` or ``5.0``, never ``"5"``."""
