"""Every query on products, in SQLAlchemy Core (the hot read paths never load ORM entities)."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, cast
from uuid import UUID

from common_libs.db import driver_fetch
from sqlalchemy import (
    Boolean,
    ColumnElement,
    Integer,
    Select,
    String,
    Table,
    bindparam,
    func,
    literal,
    literal_column,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.base import AnyRow
from app.db.tables import SEARCH_CONFIG, Product

__all__ = [
    "DuplicateSkuError",
    "Keyset",
    "ProductSearch",
    "count_products_by_category",
    "fetch_product",
    "fetch_product_state",
    "insert_product",
    "list_products",
    "soft_delete_product",
    "update_product",
]

products = cast(Table, Product.__table__)
_LIVE = products.c.deleted_at.is_(None)
_SKU_INDEX = "uq_products_sku_live"

PRODUCT_COLUMNS = (
    products.c.id,
    products.c.sku,
    products.c.name,
    products.c.description,
    products.c.category,
    products.c.price,
    products.c.currency,
    (products.c.stock - products.c.held).label("stock_available"),
    products.c.created_at,
    products.c.updated_at,
)

# Built once: the hottest statement of the service.
_FETCH_PRODUCT = select(*PRODUCT_COLUMNS).where(products.c.id == bindparam("product_id"), _LIVE)


class DuplicateSkuError(Exception):
    """Another live product already has this SKU."""


@dataclass(frozen=True, slots=True)
class Keyset:
    """A position in the list: the last row of the previous page."""

    created_at: datetime
    id: UUID


@dataclass(frozen=True, slots=True)
class ProductSearch:
    """The filters of a list request (None: not filtered)."""

    q: str | None = None
    category: str | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    in_stock: bool | None = None


async def fetch_product(connection: AsyncConnection, *, product_id: UUID) -> AnyRow | None:
    """The live product with this id, as the API shows it."""
    result = await connection.execute(_FETCH_PRODUCT, {"product_id": product_id})
    return result.first()


# The same statement as SQLAlchemy compiles it for asyncpg, for ``fetch_product_record``.
_FETCH_PRODUCT_SQL = str(_FETCH_PRODUCT.compile(dialect=asyncpg_dialect()))  # type: ignore[no-untyped-call]


async def fetch_product_record(
    connection: AsyncConnection, *, product_id: UUID
) -> Mapping[str, Any] | None:
    """``fetch_product`` straight on the driver: the hottest read of the fleet.

    The statement is SQLAlchemy's own (compiled once, above); asyncpg prepares it once per
    connection and returns the column types the API needs (UUID, Decimal, aware datetimes), so
    SQLAlchemy's execution context and result processing (about a sixth of the CPU of a
    ``GET /products/{id}``) have nothing to add. The connection still comes from, and goes back
    to, SQLAlchemy's pool; common-libs' ``driver_fetch`` gives it up when it failed under the
    statement (PostgreSQL stopped, say), so that the next request does not get it back.
    """
    rows = await driver_fetch(connection, _FETCH_PRODUCT_SQL, product_id)
    return cast(Mapping[str, Any], rows[0]) if rows else None


async def fetch_product_state(connection: AsyncConnection, *, product_id: UUID) -> AnyRow | None:
    """``stock`` and ``held`` of the live product with this id (to explain a refused write)."""
    statement = select(products.c.stock, products.c.held).where(products.c.id == product_id, _LIVE)
    return (await connection.execute(statement)).first()


@functools.cache
def _list_statement(
    *,
    q: bool,
    category: bool,
    min_price: bool,
    max_price: bool,
    in_stock: bool | None,
    after: bool,
) -> Select[*tuple[Any, ...]]:
    """The list query for one combination of filters, built once and reused with new values."""
    conditions: list[ColumnElement[bool]] = [_LIVE]
    if q:
        # A filter, not a ranking: ranking would score every match before the first page
        # (25 to 40 times slower for a common word at 100,000 products; see the README).
        # websearch_to_tsquery accepts any input without raising a syntax error.
        config: ColumnElement[Any] = literal_column(f"'{SEARCH_CONFIG}'::regconfig")
        query = func.websearch_to_tsquery(config, bindparam("q", type_=String))
        conditions.append(products.c.search.bool_op("@@")(query))
    if category:
        conditions.append(products.c.category == bindparam("category", type_=String))
    if min_price:
        conditions.append(products.c.price >= bindparam("min_price", type_=products.c.price.type))
    if max_price:
        conditions.append(products.c.price <= bindparam("max_price", type_=products.c.price.type))
    if in_stock is True:
        conditions.append(products.c.stock > products.c.held)
    elif in_stock is False:
        conditions.append(products.c.stock <= products.c.held)
    if after:
        position = tuple_(
            bindparam("after_created_at", type_=products.c.created_at.type),
            bindparam("after_id", type_=products.c.id.type),
        )
        conditions.append(tuple_(products.c.created_at, products.c.id) < position)
    return (
        select(*PRODUCT_COLUMNS)
        .where(*conditions)
        .order_by(products.c.created_at.desc(), products.c.id.desc())
        .limit(bindparam("limit", type_=Integer))
    )


async def list_products(
    connection: AsyncConnection, *, search: ProductSearch, after: Keyset | None, limit: int
) -> Sequence[AnyRow]:
    """Up to ``limit`` live products after ``after``, newest first."""
    statement = _list_statement(
        q=search.q is not None,
        category=search.category is not None,
        min_price=search.min_price is not None,
        max_price=search.max_price is not None,
        in_stock=search.in_stock,
        after=after is not None,
    )
    values: dict[str, Any] = {
        "q": search.q,
        "category": search.category,
        "min_price": search.min_price,
        "max_price": search.max_price,
        "limit": limit,
    }
    if after is not None:
        values.update(after_created_at=after.created_at, after_id=after.id)
    parameters = {name: value for name, value in values.items() if value is not None}
    return (await connection.execute(statement, parameters)).all()


async def count_products_by_category(connection: AsyncConnection) -> Sequence[AnyRow]:
    """``(name, product_count)`` of every category that holds a live product, by name."""
    statement = (
        select(products.c.category.label("name"), func.count().label("product_count"))
        .where(_LIVE)
        .group_by(products.c.category)
        .order_by(products.c.category)
    )
    return (await connection.execute(statement)).all()


def _is_duplicate_sku(exc: IntegrityError) -> bool:
    cause = getattr(exc.orig, "__cause__", None)
    return getattr(cause, "constraint_name", None) == _SKU_INDEX


async def insert_product(connection: AsyncConnection, *, values: dict[str, Any]) -> AnyRow:
    """Insert a product and return it; raise DuplicateSkuError when its SKU is taken."""
    statement = (
        insert(products)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[products.c.sku], index_where=_LIVE)
        .returning(*PRODUCT_COLUMNS)
    )
    row = (await connection.execute(statement)).first()
    if row is None:
        raise DuplicateSkuError
    return row


async def update_product(
    connection: AsyncConnection, *, product_id: UUID, changes: dict[str, Any]
) -> AnyRow | None:
    """Apply ``changes`` to a live product; None when it is gone or stock would drop below held.

    The stock condition is part of the statement, so a reservation committed in between cannot
    slip under it.
    """
    statement = (
        update(products)
        .where(products.c.id == product_id, _LIVE)
        .values(**changes, updated_at=func.now())
        .returning(*PRODUCT_COLUMNS)
    )
    if "stock" in changes:
        statement = statement.where(products.c.held <= changes["stock"])
    try:
        return (await connection.execute(statement)).first()
    except IntegrityError as exc:
        if _is_duplicate_sku(exc):
            raise DuplicateSkuError from exc
        raise


async def soft_delete_product(connection: AsyncConnection, *, product_id: UUID) -> bool:
    """Mark a live product deleted unless stock of it is held; True when it was deleted."""
    statement = (
        update(products)
        .where(products.c.id == product_id, _LIVE, products.c.held == 0)
        .values(deleted_at=func.now(), updated_at=func.now())
        .returning(literal(True, Boolean))
    )
    return (await connection.execute(statement)).first() is not None
