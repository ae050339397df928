"""Every query on the catalog's read model: products kept from the catalog's events, the initial
fill, and the product search that grounds a chat turn."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from common_libs.db import driver_fetch
from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    func,
    literal,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import REGCONFIG
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.tables import SEARCH_CONFIG, CatalogProductRow, ReadModelState
from app.models.catalog_models import CatalogProduct

__all__ = [
    "ProductFilters",
    "delete_product",
    "fill_products",
    "filter_products",
    "get_product",
    "is_filled",
    "mark_filled",
    "search_products",
    "try_lock_fill",
    "upsert_product",
]

_PRODUCTS = cast(Table, CatalogProductRow.__table__)
_COLUMNS = tuple(CatalogProduct.model_fields)
_new_row = pg_insert(_PRODUCTS).values({name: bindparam(name) for name in _COLUMNS})
# Built once (Core statements on the table, their cache keys computed once).
_UPSERT = _new_row.on_conflict_do_update(
    index_elements=[_PRODUCTS.c.id],
    set_={name: _new_row.excluded[name] for name in _COLUMNS if name != "id"},
)
_DELETE = delete(_PRODUCTS).where(_PRODUCTS.c.id == bindparam("id"))

# The fill's page, in one statement: claim each product's version guard at version 0, and insert
# only the products whose claim succeeded. A product with a guard row already (an event applied
# it, or deleted it) keeps what the event made of it. Claims are taken in id order, so two fills
# lock the same guard rows in the same order.
_FILL = text(
    """
    WITH page AS (
        SELECT * FROM jsonb_to_recordset(CAST(:products AS jsonb)) AS p(
            id uuid, sku text, name text, description text, category text, price numeric,
            currency text, stock_available integer, updated_at timestamptz
        )
    ), claimed AS (
        INSERT INTO consumed_versions (consumer, entity, subject, version)
        SELECT :consumer, :entity, CAST(page.id AS text), 0 FROM page ORDER BY page.id
        ON CONFLICT DO NOTHING
        RETURNING subject
    )
    INSERT INTO catalog_products
        (id, sku, name, description, category, price, currency, stock_available, updated_at)
    SELECT page.id, page.sku, page.name, page.description, page.category, page.price,
        page.currency, page.stock_available, page.updated_at
    FROM page JOIN claimed ON claimed.subject = CAST(page.id AS text)
    ON CONFLICT (id) DO NOTHING
    RETURNING id
    """
)

# The search of a chat turn, in one statement (about 0.2-0.4 ms of SQL for 500 products; see
# the README). Exact matches: products whose text has any of the terms (text search, the GIN
# index on ``search``), those with every term first (as "all the words, else any of them" did),
# then by weighted cover density (name, then sku and category, then description). When they are
# fewer than ``limit``, products whose name has a word close to a term that no product's text has
# (a misspelling: "headphnoes"; the trigram index on ``name``, word similarity from 0.5, see
# ``app.db.session``) fill up the rest, closest first; only terms of four letters or more, as a
# shorter one would match too much by accident. Among equals, products in stock come first.
# The unknown terms are found first (materialized, through the text-search index), so that a
# message whose terms the catalog knows never compares names by trigrams, and an unknown term
# is looked up through the trigram index rather than against every name.
_SEARCH = """
    WITH query AS MATERIALIZED (
        SELECT
            websearch_to_tsquery(
                CAST($1 AS regconfig), array_to_string(CAST($2 AS text[]), ' or ')
            ) AS any_term,
            websearch_to_tsquery(
                CAST($1 AS regconfig), array_to_string(CAST($2 AS text[]), ' ')
            ) AS every_term
    ), exact AS MATERIALIZED (
        SELECT p.id, CASE WHEN p.search @@ query.every_term THEN 2 ELSE 1 END AS tier,
            ts_rank_cd(p.search, query.any_term) AS score
        FROM catalog_products AS p CROSS JOIN query
        WHERE p.search @@ query.any_term
    ), unknown AS MATERIALIZED (
        SELECT t.term FROM unnest(CAST($2 AS text[])) AS t (term)
        WHERE (SELECT count(*) FROM exact) < CAST($3 AS integer) AND length(t.term) >= 4
            AND NOT EXISTS (
                SELECT FROM catalog_products AS known
                WHERE known.search @@ plainto_tsquery(CAST($1 AS regconfig), t.term)
            )
    ), near AS (
        SELECT p.id, 0 AS tier, max(word_similarity(u.term, p.name)) AS score
        FROM unknown AS u
        JOIN catalog_products AS p ON p.name %> u.term
        WHERE p.id NOT IN (SELECT id FROM exact)
        GROUP BY p.id
    )
    SELECT p.id, p.sku, p.name, p.description, p.category, p.price, p.currency,
        p.stock_available, p.updated_at
    FROM (SELECT * FROM exact UNION ALL SELECT * FROM near) AS found
    JOIN catalog_products AS p USING (id)
    ORDER BY found.tier DESC, found.score DESC, p.stock_available > 0 DESC, p.name, p.id
    LIMIT CAST($3 AS integer)
"""

_PRODUCT_COLUMNS = [_PRODUCTS.c[name] for name in _COLUMNS]
_GET = select(*_PRODUCT_COLUMNS).where(_PRODUCTS.c.id == bindparam("id"))


@dataclass(frozen=True, slots=True)
class ProductFilters:
    """What the assistant's product search may narrow by, besides words."""

    category: str | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    in_stock: bool = False

    @property
    def any(self) -> bool:
        """Whether any filter is set."""
        return (self.category, self.min_price, self.max_price) != (None, None, None) or (
            self.in_stock
        )


_LOCK_FILL = text("SELECT pg_try_advisory_xact_lock(hashtextextended(:name, 0))")
_STATE = cast(Table, ReadModelState.__table__)
_IS_FILLED = select(exists().where(_STATE.c.name == bindparam("name")))
_MARK_FILLED = pg_insert(_STATE).values(name=bindparam("name")).on_conflict_do_nothing()


async def upsert_product(connection: AsyncConnection, product: CatalogProduct) -> None:
    """Insert the product or replace what the read model had of it."""
    await connection.execute(_UPSERT, product.model_dump(include=set(_COLUMNS)))


async def delete_product(connection: AsyncConnection, *, product_id: uuid.UUID) -> None:
    """Forget the product (a second delete finds nothing)."""
    await connection.execute(_DELETE, {"id": product_id})


async def fill_products(
    connection: AsyncConnection,
    products: Sequence[CatalogProduct],
    *,
    consumer: str,
    entity: str,
) -> int:
    """Insert the products no event of ``consumer`` has applied yet (their guard's ``entity``
    rows are claimed at version 0, below any event's); how many were inserted."""
    if not products:
        return 0
    page = json.dumps([product.model_dump(mode="json") for product in products])
    parameters = {"products": page, "consumer": consumer, "entity": entity}
    return len((await connection.execute(_FILL, parameters)).all())


async def search_products(
    connection: AsyncConnection, *, terms: Sequence[str], limit: int
) -> list[CatalogProduct]:
    """The ``limit`` products that match ``terms`` best (see ``_SEARCH``); none without terms.

    Run through asyncpg itself (common-libs' ``driver_fetch``: it raises asyncpg's errors, not
    SQLAlchemy's).
    """
    if not terms or limit < 1:
        return []
    rows = await driver_fetch(connection, _SEARCH, SEARCH_CONFIG, list(terms), limit)
    return [CatalogProduct.model_validate(dict(row)) for row in rows]


async def filter_products(
    connection: AsyncConnection, *, terms: Sequence[str], filters: ProductFilters, limit: int
) -> list[CatalogProduct]:
    """The ``limit`` products within ``filters`` that have any of ``terms`` (all products within
    them when there are none), best text match first, then those in stock, then by name."""
    table = _PRODUCTS.c
    conditions: list[ColumnElement[bool]] = []
    rank: ColumnElement[Any] = literal(0.0)
    if terms:
        query = func.websearch_to_tsquery(
            literal(SEARCH_CONFIG).cast(REGCONFIG), " or ".join(terms)
        )
        conditions.append(table.search.op("@@")(query))
        rank = func.ts_rank_cd(table.search, query)
    if filters.category is not None:
        conditions.append(func.lower(table.category) == filters.category.lower())
    if filters.min_price is not None:
        conditions.append(table.price >= filters.min_price)
    if filters.max_price is not None:
        conditions.append(table.price <= filters.max_price)
    if filters.in_stock:
        conditions.append(table.stock_available > 0)
    statement = (
        select(*_PRODUCT_COLUMNS)
        .where(and_(True, *conditions))
        .order_by(rank.desc(), (table.stock_available > 0).desc(), table.name, table.id)
        .limit(limit)
    )
    rows = (await connection.execute(statement)).mappings().all()
    return [CatalogProduct.model_validate(dict(row)) for row in rows]


async def get_product(
    connection: AsyncConnection, *, product_id: uuid.UUID
) -> CatalogProduct | None:
    """The product with this id, when the read model has it."""
    row = (await connection.execute(_GET, {"id": product_id})).mappings().first()
    return CatalogProduct.model_validate(dict(row)) if row is not None else None


async def try_lock_fill(connection: AsyncConnection, *, name: str) -> bool:
    """Take the fill's advisory lock until the transaction ends, if no one holds it."""
    return bool(await connection.scalar(_LOCK_FILL, {"name": f"read-model-fill:{name}"}))


async def is_filled(connection: AsyncConnection, *, name: str) -> bool:
    """Whether the read model's initial fill finished (by any replica, ever)."""
    return bool(await connection.scalar(_IS_FILLED, {"name": name}))


async def mark_filled(connection: AsyncConnection, *, name: str) -> None:
    """Record that the read model's initial fill finished."""
    await connection.execute(_MARK_FILLED, {"name": name})
