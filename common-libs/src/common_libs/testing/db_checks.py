"""Checks every service runs on its own database, with its own facts (needs ``common-libs[db]``).

- :func:`create_migrated_database`: a fresh database for a test session, at the newest revision.
- :func:`check_schema_matches_models`: the migrated schema is the one the models describe.
- :func:`check_migrations_round_trip`: upgrade to head, downgrade to base, upgrade again.
- :func:`check_ready_answers`: ``/ready`` is 200 and reports every check ``ok``.
- :func:`check_ready_names_stopped_database`: ``/ready`` is a 503 naming ``database`` once the
  service's PostgreSQL is stopped.
- :func:`check_lost_database_answers_503`: while the database refuses connections, the service's
  routes answer 503 problem+json with ``Retry-After`` (never 500), and serve again afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from contextlib import ExitStack
from pathlib import Path

import httpx
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi import FastAPI
from sqlalchemy import CheckConstraint, Connection, MetaData, Table, inspect
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from common_libs.migrations import alembic_config
from common_libs.problem_types import SERVICE_UNAVAILABLE
from common_libs.testing.app_checks import asgi_client
from common_libs.testing.findings import async_findings
from common_libs.testing.outages import database_refusing_connections
from common_libs.testing.postgres import PostgresServer, create_database, start_postgres
from common_libs.testing.processes import eventually

__all__ = [
    "Call",
    "check_lost_database_answers_503",
    "check_migrations_round_trip",
    "check_ready_answers",
    "check_ready_names_stopped_database",
    "check_schema_matches_models",
    "create_migrated_database",
    "readiness_test",
]

_Shape = tuple[set[str], set[tuple[str, bool, bool]]]


def create_migrated_database(server: PostgresServer, name: str, *, alembic_ini: Path) -> str:
    """Create database ``name`` on ``server`` at the newest revision of the migrations; its URL."""
    url = create_database(server, name)
    command.upgrade(alembic_config(alembic_ini, url), "head")
    return url


def _declared(table: Table) -> _Shape:
    """Check constraint names and (index name, unique, partial) as the models declare them."""
    checks = {
        str(constraint.name)
        for constraint in table.constraints
        if isinstance(constraint, CheckConstraint)
    }
    indexes = {
        (
            str(index.name),
            bool(index.unique),
            index.dialect_options["postgresql"]["where"] is not None,
        )
        for index in table.indexes
    }
    return checks, indexes


def _migrated(sync: Connection, name: str) -> _Shape:
    inspector = inspect(sync)
    checks = {str(check["name"]) for check in inspector.get_check_constraints(name)}
    indexes = {
        (
            str(index["name"]),
            bool(index["unique"]),
            bool(index.get("dialect_options", {}).get("postgresql_where")),
        )
        for index in inspector.get_indexes(name)
        # An index PostgreSQL made for a UNIQUE constraint is compared as the constraint.
        if "duplicates_constraint" not in index
    }
    return checks, indexes


def _differences(sync: Connection, metadata: MetaData) -> list[object]:
    differences: list[object] = list(compare_metadata(MigrationContext.configure(sync), metadata))
    # compare_metadata leaves CHECK constraints and partial-index predicates out.
    for table in metadata.sorted_tables:
        declared, migrated = _declared(table), _migrated(sync, table.name)
        if declared != migrated:
            differences.append((table.name, {"models": declared, "migrated": migrated}))
    return differences


async def check_schema_matches_models(database_url: str, metadata: MetaData) -> None:
    """The database at ``database_url`` (migrated to head) has exactly the models' schema."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(_differences, metadata)
    finally:
        await engine.dispose()

    assert differences == []


async def _current_revision(database_url: str) -> str | None:
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()


def check_migrations_round_trip(config: Config) -> None:
    """Upgrade an empty database to head, downgrade it to base, and upgrade it to head again.

    ``config`` points at the database (``config.attributes["database_url"]``); call this from a
    synchronous test, as Alembic's env runs its own event loop.
    """
    url = str(config.attributes["database_url"])
    head = ScriptDirectory.from_config(config).get_current_head()

    command.upgrade(config, "head")
    assert asyncio.run(_current_revision(url)) == head

    command.downgrade(config, "base")
    assert asyncio.run(_current_revision(url)) is None

    command.upgrade(config, "head")
    assert asyncio.run(_current_revision(url)) == head


async def check_ready_answers(client: httpx.AsyncClient, *, checks: Mapping[str, str]) -> None:
    """``GET /ready`` answers 200 with exactly ``checks`` (name to result)."""
    response = await client.get("/ready")

    assert response.status_code == 200
    assert response.json()["checks"] == dict(checks)


async def check_ready_names_stopped_database(
    make_app: Callable[[str], FastAPI],
    *,
    started: Callable[[FastAPI], Awaitable[None]] | None = None,
    checks: Mapping[str, str] | None = None,
) -> None:
    """An app on a PostgreSQL of its own is ready, then answers 503 naming ``database`` once
    that server is stopped.

    ``make_app(database_url)`` builds the service's app; ``started(app)``, when given, waits for
    what its lifespan started in the background before the first probe; ``checks``, when given,
    are exactly what the ready answer reports (name to result).
    """
    with ExitStack() as stack:
        server = stack.enter_context(start_postgres())
        app = make_app(create_database(server, "ready_probe"))
        async with app.router.lifespan_context(app):
            if started is not None:
                await started(app)
            async with asgi_client(app) as client:
                if checks is None:
                    assert (await client.get("/ready")).status_code == 200
                else:
                    await check_ready_answers(client, checks=checks)

                stack.close()  # stops this check's own PostgreSQL server
                response = await client.get("/ready")

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["checks"]["database"].startswith("failed")
    assert "database" in body["detail"]


def readiness_test(
    make_app: Callable[[str], FastAPI],
    *,
    checks: Mapping[str, str],
    started: Callable[[FastAPI], Awaitable[None]] | None = None,
) -> Callable[[], Awaitable[None]]:
    """The readiness test of a service, bound in its suite in one statement::

        test_ready_tells_whether_the_database_answers = readiness_test(
            lambda url: create_app(make_settings(database_url=url)), checks={"database": "ok"}
        )

    See :func:`check_ready_names_stopped_database` for ``make_app``, ``checks`` and ``started``.
    """

    async def test_ready_tells_whether_the_database_answers() -> None:
        found = await async_findings(
            lambda: check_ready_names_stopped_database(make_app, started=started, checks=checks)
        )

        assert found == []

    return test_ready_tells_whether_the_database_answers


Call = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]
"""One request of a route that uses the database (``lambda c: c.get("/products")``)."""


async def check_lost_database_answers_503(
    client: httpx.AsyncClient, database_url: str, calls: Mapping[str, Call]
) -> None:
    """The app behind ``client`` (started, on the database of ``database_url``, a database of
    its own) answers each of ``calls`` below 500; while that database refuses connections and
    has cut those it had (:func:`~common_libs.testing.outages.database_refusing_connections`),
    each answers 503 ``application/problem+json`` with ``Retry-After``, twice (a connection
    lost, then one refused); once the database is back, each answers below 500 again, without a
    restart."""
    for name, call in calls.items():
        before = await call(client)
        assert before.status_code < 500, f"{name} before the outage: {before.status_code}"
    async with database_refusing_connections(database_url):
        outage = [
            (f"{name} during the outage ({attempt})", await call(client))
            for name, call in calls.items()
            for attempt in ("lost", "refused")
        ]
    for what, during in outage:
        said = f"{what}: {during.status_code} {during.text}"
        assert during.status_code == 503, said
        assert during.headers["content-type"] == "application/problem+json", said
        assert during.headers.get("retry-after", "").isdigit(), said
        assert during.json()["type"] == SERVICE_UNAVAILABLE.type, said
    for name, call in calls.items():

        async def answers(call: Call = call) -> bool:
            return (await call(client)).status_code < 500

        await eventually(answers, message=f"{name} answers again after the outage")
