"""Throwaway catalog databases of a given size: created, migrated, bulk-loaded with COPY.

Products are deterministic and shaped like the catalog's own benchmark data (three-word names,
one sentence of description, 8 categories, the same vocabulary), so a two-word search such as
``walnut desk`` matches about 2.7 % of the products at every size. Each product is one second
newer than the one before, so the newest-first order is the load order.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import subprocess
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg

__all__ = ["create_database", "drop_database", "load_products", "migrate", "page_cursor"]

ADJECTIVES = (
    "compact", "classic", "rugged", "silent", "smart", "vintage", "modern", "foldable",
    "portable", "premium", "wireless", "ergonomic", "waterproof", "heated", "minimal",
)  # fmt: skip
MATERIALS = (
    "oak", "walnut", "steel", "bamboo", "leather", "linen", "ceramic", "glass", "wool",
    "carbon", "cotton", "granite", "copper", "maple", "canvas",
)  # fmt: skip
NOUNS = (
    "desk", "chair", "lamp", "kettle", "backpack", "tent", "jacket", "speaker", "bottle",
    "shelf", "blanket", "mug", "headphones", "boots", "table", "sofa", "clock", "mirror",
    "stool", "rug",
)  # fmt: skip
CATEGORIES = ("home", "office", "outdoor", "kitchen", "audio", "apparel", "decor", "travel")
COLUMNS = ("sku", "name", "description", "category", "price", "currency", "stock", "created_at")
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
# Parallel COPY streams: the server's work per row (the generated tsvector, the GIN and B-tree
# indexes) then uses both cores while this process makes the rows.
_STREAMS = 2


def _records(start: int, count: int) -> Iterator[tuple[object, ...]]:
    rng = random.Random(20261126 + start)  # noqa: S311 - sample data, not secrets
    for i in range(start, start + count):
        name = f"{rng.choice(ADJECTIVES)} {rng.choice(MATERIALS)} {rng.choice(NOUNS)}"
        description = (
            f"A {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} made of {rng.choice(MATERIALS)}, "
            f"pairs well with a {rng.choice(MATERIALS)} {rng.choice(NOUNS)}."
        )
        yield (
            f"BENCH-{i:08d}",
            name.capitalize(),
            description,
            rng.choice(CATEGORIES),
            Decimal(rng.randint(100, 100_000)) / 100,
            "USD",
            rng.randint(0, 500),
            _EPOCH + timedelta(seconds=i),
        )


async def create_database(server_dsn: str, name: str) -> None:
    """Create database ``name`` (dropping a leftover of an interrupted run first)."""
    connection = await asyncpg.connect(server_dsn)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def drop_database(server_dsn: str, name: str) -> None:
    """Drop database ``name`` (its connections are closed first)."""
    connection = await asyncpg.connect(server_dsn)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def migrate(catalog_dir: Path, env: Mapping[str, str]) -> None:
    """``alembic upgrade head`` of the catalog, as the fleet runner migrates it."""
    subprocess.run(
        [str(catalog_dir / ".venv" / "bin" / "alembic"), "upgrade", "head"],
        cwd=catalog_dir,
        env=dict(env),
        check=True,
        capture_output=True,
        timeout=120,
    )


async def load_products(dsn: str, count: int) -> None:
    """COPY ``count`` products in (a few streams at once), then VACUUM ANALYZE."""
    streams = min(_STREAMS, max(1, count // 10_000))
    bounds = [count * part // streams for part in range(streams + 1)]

    async def copy(start: int, end: int) -> None:
        connection = await asyncpg.connect(dsn)
        try:
            records = _records(start, end - start)
            await connection.copy_records_to_table("products", records=records, columns=COLUMNS)
        finally:
            await connection.close()

    await asyncio.gather(*(copy(bounds[i], bounds[i + 1]) for i in range(streams)))
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("VACUUM ANALYZE products")
    finally:
        await connection.close()


async def page_cursor(dsn: str, *, after_rows: int) -> str:
    """The cursor of the page that follows the newest ``after_rows`` products.

    The catalog's opaque cursor is its keyset (``created_at``, ``id``) of the last row seen,
    packed as common-libs' ``encode_cursor`` packs it; the benchmark checks that the catalog
    accepts it before measuring.
    """
    connection = await asyncpg.connect(dsn)
    try:
        row = await connection.fetchrow(
            "SELECT created_at, id FROM products ORDER BY created_at DESC, id DESC "
            "OFFSET $1 LIMIT 1",
            after_rows - 1,
        )
    finally:
        await connection.close()
    position = {"c": row["created_at"].isoformat(), "i": str(row["id"])}
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
