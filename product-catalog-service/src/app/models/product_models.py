"""API models of products and categories: what admins send and what everyone reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Self
from uuid import UUID

from common_libs.money import Currency, Money
from fastapi import Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from app.models.common import JSON_INTEGER, NO_NUL, VISIBLE, hide_null_defaults

__all__ = [
    "CategorySummary",
    "Product",
    "ProductCreate",
    "ProductFilters",
    "ProductUpdate",
    "product_filters",
]

# 1..64 characters, as the pattern says; the lengths are only documented (validating them too
# would name the error of a long SKU string_too_long rather than string_pattern_mismatch).
Sku = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        examples=["LAP-13-001"],
        json_schema_extra={"minLength": 1, "maxLength": 64},
    ),
]
ProductName = Annotated[str, Field(min_length=1, max_length=200, pattern=VISIBLE)]
Description = Annotated[str, Field(max_length=5000, pattern=NO_NUL)]
CategoryName = Annotated[str, Field(min_length=1, max_length=100, pattern=VISIBLE)]
StockCount = Annotated[int, Field(ge=0, le=1_000_000_000), JSON_INTEGER]


def _strict_query_bool(value: Any) -> Any:
    """Accept only ``true`` / ``false`` in a query string (not ``yes``, ``1``, ``on``...)."""
    if isinstance(value, str):
        if value in ("true", "false"):
            return value == "true"
        raise ValueError("must be true or false")
    return value


QueryBool = Annotated[bool, BeforeValidator(_strict_query_bool)]


class ProductCreate(BaseModel):
    """``POST /products``: a new product; ``currency`` defaults to USD."""

    model_config = ConfigDict(extra="forbid")

    sku: Sku
    name: ProductName
    description: Description
    category: CategoryName
    price: Money
    currency: Currency = "USD"
    stock: StockCount


class ProductUpdate(BaseModel):
    """``PATCH /products/{id}``: the fields to change; any may be left out, none may be null."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=hide_null_defaults)

    sku: Sku | SkipJsonSchema[None] = None
    name: ProductName | SkipJsonSchema[None] = None
    description: Description | SkipJsonSchema[None] = None
    category: CategoryName | SkipJsonSchema[None] = None
    price: Money | SkipJsonSchema[None] = None
    currency: Currency | SkipJsonSchema[None] = None
    stock: StockCount | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _refuse_nulls(self) -> Self:
        nulls = sorted(name for name in self.model_fields_set if getattr(self, name) is None)
        if nulls:
            raise ValueError(f"may be left out but not null: {', '.join(nulls)}")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, by column name."""
        return self.model_dump(exclude_unset=True)


class Product(BaseModel):
    """A product as everyone reads it; ``stock_available`` is stock minus what is held."""

    id: UUID
    sku: str
    name: str
    description: str
    category: str
    price: Money
    currency: str
    stock_available: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ProductFilters:
    """The filters of ``GET /products`` (None: not filtered; all combined with AND)."""

    q: str | None = None
    category: str | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    in_stock: bool | None = None


async def product_filters(
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=200,
            pattern=NO_NUL,
            description="Full-text search in name and description: every word must match "
            '(English stemming; web-search syntax: "quoted phrase", or, -word).',
        ),
    ]
    | SkipJsonSchema[None] = None,
    category: Annotated[
        str, Query(min_length=1, max_length=100, pattern=NO_NUL, description="Exact category.")
    ]
    | SkipJsonSchema[None] = None,
    min_price: Annotated[Money, Query(description="Lowest price, inclusive.")]
    | SkipJsonSchema[None] = None,
    max_price: Annotated[Money, Query(description="Highest price, inclusive.")]
    | SkipJsonSchema[None] = None,
    in_stock: Annotated[
        QueryBool, Query(description="true: stock_available > 0; false: stock_available = 0.")
    ]
    | SkipJsonSchema[None] = None,
) -> ProductFilters:
    """The query parameters of ``GET /products`` (a dependency; plain parameters are cheaper
    for FastAPI to read than a query-parameter model)."""
    return ProductFilters(
        q=q, category=category, min_price=min_price, max_price=max_price, in_stock=in_stock
    )


class CategorySummary(BaseModel):
    """A category and how many live products it holds."""

    name: str
    product_count: int
