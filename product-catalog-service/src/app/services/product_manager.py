"""Rules of the catalog: products, their listing and search, and categories."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from common_libs.events import DeletedData, write_event, write_events
from common_libs.pagination import InvalidCursor, Page, PageParams, encode_cursor
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db import product_repository
from app.db.base import AnyRow
from app.db.product_repository import DuplicateSkuError, Keyset, ProductSearch
from app.events import PRODUCT_CREATED, PRODUCT_DELETED, PRODUCT_UPDATED
from app.models.product_models import (
    CategorySummary,
    Product,
    ProductCreate,
    ProductFilters,
    ProductUpdate,
)
from app.services.errors import DuplicateSku, ProductHasHeldStock, ProductNotFound, StockBelowHeld

__all__ = [
    "create_product",
    "delete_product",
    "get_product_json",
    "list_categories",
    "list_products",
    "update_product",
    "write_product_updates",
]

_PRODUCT_FIELDS = tuple(Product.model_fields)


def _to_product(row: AnyRow) -> Product:
    # Rows come from our own typed columns: constructing skips a second validation pass.
    mapping = row._mapping
    return Product.model_construct(**{name: mapping[name] for name in _PRODUCT_FIELDS})


async def _fetch_product(connection: AsyncConnection, product_id: UUID) -> Product:
    row = await product_repository.fetch_product(connection, product_id=product_id)
    if row is None:
        raise ProductNotFound(product_id)
    return _to_product(row)


_PRODUCT_SERIALIZER = Product.__pydantic_serializer__


async def get_product_json(*, engine: AsyncEngine, product_id: UUID) -> bytes:
    """The live product with this id as the API's JSON body (``Product``'s own serialiser)."""
    async with engine.connect() as connection:
        record = await product_repository.fetch_product_record(connection, product_id=product_id)
    if record is None:
        raise ProductNotFound(product_id)
    product = Product.model_construct(**{name: record[name] for name in _PRODUCT_FIELDS})
    return _PRODUCT_SERIALIZER.to_json(product)


def _cursor_for(row: AnyRow) -> str:
    return encode_cursor({"c": row.created_at.isoformat(), "i": str(row.id)})


def _keyset_from(cursor: dict[str, Any]) -> Keyset:
    """Read a cursor made by ``_cursor_for``."""
    if set(cursor) != {"c", "i"}:
        raise InvalidCursor
    try:
        created_at = datetime.fromisoformat(cursor["c"])
        product_id = UUID(cursor["i"])
    except (TypeError, ValueError) as exc:
        raise InvalidCursor from exc
    if created_at.tzinfo is None:
        raise InvalidCursor
    return Keyset(created_at=created_at, id=product_id)


async def list_products(
    *, engine: AsyncEngine, filters: ProductFilters, page: PageParams
) -> Page[Product]:
    """A page of live products matching ``filters``, newest first (``created_at``, then ``id``).

    The cursor is the keyset of the page's last row, which never changes: a walk sees every
    product that existed when it started exactly once, however many are added meanwhile.
    """
    after = _keyset_from(page.cursor) if page.cursor is not None else None
    search = ProductSearch(
        q=filters.q,
        category=filters.category,
        min_price=filters.min_price,
        max_price=filters.max_price,
        in_stock=filters.in_stock,
    )
    async with engine.connect() as connection:
        rows = await product_repository.list_products(
            connection, search=search, after=after, limit=page.limit + 1
        )
    next_cursor = _cursor_for(rows[page.limit - 1]) if len(rows) > page.limit else None
    return Page[Product].model_construct(
        items=[_to_product(row) for row in rows[: page.limit]], next_cursor=next_cursor
    )


async def list_categories(*, engine: AsyncEngine) -> list[CategorySummary]:
    """Every category that holds a live product, by name, with its product count."""
    async with engine.connect() as connection:
        rows = await product_repository.count_products_by_category(connection)
    return [CategorySummary(name=row.name, product_count=row.product_count) for row in rows]


async def create_product(*, connection: AsyncConnection, product: ProductCreate) -> Product:
    """Add a product (and its created event); its SKU must not be taken by a live product."""
    try:
        row = await product_repository.insert_product(connection, values=product.model_dump())
    except DuplicateSkuError:
        raise DuplicateSku(product.sku) from None
    created = _to_product(row)
    await write_event(connection, PRODUCT_CREATED, created.id, created)
    return created


async def update_product(
    *, connection: AsyncConnection, product_id: UUID, update: ProductUpdate
) -> Product:
    """Change some fields of a product (and write its updated event); stock may not go below
    what reservations hold. An empty change changes nothing, not even ``updated_at``: no event."""
    changes = update.changes()
    if not changes:
        return await _fetch_product(connection, product_id)
    try:
        row = await product_repository.update_product(
            connection, product_id=product_id, changes=changes
        )
    except DuplicateSkuError:
        raise DuplicateSku(changes["sku"]) from None
    if row is not None:
        updated = _to_product(row)
        await write_event(connection, PRODUCT_UPDATED, product_id, updated)
        return updated
    state = await product_repository.fetch_product_state(connection, product_id=product_id)
    if state is None:
        raise ProductNotFound(product_id)
    raise StockBelowHeld(product_id, held=state.held)


async def write_product_updates(connection: AsyncConnection, rows: Sequence[AnyRow]) -> None:
    """Write catalog.product.updated for each live product of ``rows`` (``PRODUCT_COLUMNS`` and
    ``is_live``, read by the statement that changed them), in one round trip.

    A deleted product is left out: ``GET /products/{id}`` does not show it, so its
    representation did not change (only releasing a committed reservation reaches one).
    """
    await write_events(
        connection, PRODUCT_UPDATED, {row.id: _to_product(row) for row in rows if row.is_live}
    )


async def delete_product(*, connection: AsyncConnection, product_id: UUID) -> None:
    """Delete a product (softly: reservations keep referring to it) unless stock of it is held,
    and write its deleted event."""
    if await product_repository.soft_delete_product(connection, product_id=product_id):
        await write_event(connection, PRODUCT_DELETED, product_id, DeletedData(id=product_id))
        return
    state = await product_repository.fetch_product_state(connection, product_id=product_id)
    if state is None:
        raise ProductNotFound(product_id)
    raise ProductHasHeldStock(product_id, held=state.held)
