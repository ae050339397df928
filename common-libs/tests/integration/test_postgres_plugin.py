"""The ``postgres_server`` fixture as a service's suite sees it, run by an inner pytest."""

from __future__ import annotations

from pathlib import Path

import pytest

from common_libs.testing import PostgresServer
from common_libs.testing.postgres import _answers

INNER_TEST = """
import asyncio
from pathlib import Path

import asyncpg


def test_query(postgres_server):
    async def current_user():
        conn = await asyncpg.connect(postgres_server.url(driver=None))
        try:
            return await conn.fetchval("SELECT current_user")
        finally:
            await conn.close()

    assert asyncio.run(current_user()) == "postgres"
    Path("server.txt").write_text(postgres_server.url())
"""


def run_inner_suite(pytester: pytest.Pytester) -> PostgresServer:
    """Run a suite that queries ``postgres_server``; return the server it was given."""
    pytester.makepyfile(test_inner=INNER_TEST)

    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:asyncio")

    result.assert_outcomes(passed=1)
    return PostgresServer.from_url(Path(pytester.path / "server.txt").read_text())


def test_fixture_uses_the_server_named_by_test_database_url(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, postgres_server: PostgresServer
) -> None:
    monkeypatch.setenv("TEST_DATABASE_URL", postgres_server.url())

    assert run_inner_suite(pytester) == postgres_server


def test_fixture_starts_a_throwaway_server_and_removes_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, postgres_server: PostgresServer
) -> None:
    monkeypatch.delenv("TEST_DATABASE_URL", raising=False)

    inner = run_inner_suite(pytester)

    assert inner.port != postgres_server.port
    assert not _answers(inner)
