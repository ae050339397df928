"""The throwaway PostgreSQL: URLs, databases, server binaries, and the pytest plugin's fixture."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from common_libs.testing import PostgresServer, create_database, free_port, start_postgres
from common_libs.testing import postgres as postgres_module
from common_libs.testing.postgres import _answers, _docker_available, find_postgres_bindir


async def fetch_value(server: PostgresServer, query: str, database: str = "postgres") -> object:
    conn = await asyncpg.connect(server.url(database, driver=None))
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


def test_url_round_trips_through_from_url_with_quoted_credentials() -> None:
    server = PostgresServer(host="db.internal", port=6543, user="app@orders", password="p@ss:w/rd%")

    url = server.url("orders")

    assert url == "postgresql+asyncpg://app%40orders:p%40ss%3Aw%2Frd%25@db.internal:6543/orders"
    assert PostgresServer.from_url(url) == server


def test_from_url_without_details_uses_postgres_defaults() -> None:
    assert PostgresServer.from_url("postgresql:///app") == PostgresServer(
        host="127.0.0.1", port=5432, user="postgres", password=None
    )


def test_url_without_driver_is_a_plain_libpq_url() -> None:
    server = PostgresServer(host="127.0.0.1", port=5433, user="postgres")

    assert server.url(driver=None) == "postgresql://postgres@127.0.0.1:5433/postgres"


async def test_plugin_fixture_yields_a_server_that_answers(postgres_server: PostgresServer) -> None:
    assert await fetch_value(postgres_server, "SELECT current_user") == "postgres"


async def test_create_database_returns_the_url_of_an_empty_database(
    postgres_server: PostgresServer,
) -> None:
    url = create_database(postgres_server, "cl_fresh")

    assert url == postgres_server.url("cl_fresh")
    assert await fetch_value(postgres_server, "SELECT current_database()", "cl_fresh") == "cl_fresh"


async def test_create_database_recreates_an_existing_one(postgres_server: PostgresServer) -> None:
    create_database(postgres_server, "cl_recreated")
    conn = await asyncpg.connect(postgres_server.url("cl_recreated", driver=None))
    try:
        await conn.execute("CREATE TABLE leftover (id int)")

        create_database(postgres_server, "cl_recreated")  # forces the open session out
    finally:
        await conn.close()

    exists = await fetch_value(postgres_server, "SELECT to_regclass('leftover')", "cl_recreated")
    assert exists is None


@pytest.mark.parametrize(
    "name", ['x"; DROP DATABASE postgres; --', "has-dash", "has space", "", 'quo"te']
)
def test_create_database_refuses_unsafe_names(postgres_server: PostgresServer, name: str) -> None:
    with pytest.raises(ValueError, match="unsafe database name"):
        create_database(postgres_server, name)


async def test_start_postgres_serves_a_throwaway_cluster_until_the_block_ends() -> None:
    with start_postgres() as server:
        assert await fetch_value(server, "SHOW fsync") == "off"

    with pytest.raises(ConnectionRefusedError):
        await asyncpg.connect(server.url(driver=None))


def test_running_server_answers(postgres_server: PostgresServer) -> None:
    assert _answers(postgres_server)


def test_server_that_does_not_listen_does_not_answer() -> None:
    assert not _answers(PostgresServer(host="127.0.0.1", port=free_port(), user="postgres"))


def test_find_postgres_bindir_finds_initdb_and_postgres() -> None:
    bindir = find_postgres_bindir()

    assert bindir is not None
    assert os.access(bindir / "initdb", os.X_OK)
    assert os.access(bindir / "postgres", os.X_OK)


def test_find_postgres_bindir_honours_pg_bindir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = find_postgres_bindir()
    assert real is not None
    (tmp_path / "initdb").symlink_to(real / "initdb")
    monkeypatch.setenv("PG_BINDIR", str(tmp_path))

    assert find_postgres_bindir() == tmp_path


def test_find_postgres_bindir_ignores_pg_bindir_without_initdb(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = find_postgres_bindir()
    monkeypatch.setenv("PG_BINDIR", str(tmp_path))

    assert find_postgres_bindir() == real


def test_find_postgres_bindir_searches_debian_paths_when_not_on_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PG_BINDIR", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))

    bindir = find_postgres_bindir()

    assert bindir is not None
    assert bindir.parts[:4] == ("/", "usr", "lib", "postgresql")
    assert (bindir / "initdb").exists()


def test_find_postgres_bindir_prefers_the_newest_installed_version(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Simulates a machine with several server versions and none on PATH.
    installed = [f"/usr/lib/postgresql/{v}/bin/initdb" for v in ("9", "16", "15")]
    monkeypatch.delenv("PG_BINDIR", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(postgres_module.glob, "glob", lambda pattern: installed)

    assert find_postgres_bindir() == Path("/usr/lib/postgresql/16/bin")


def test_find_postgres_bindir_without_server_binaries_finds_none(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Simulates a machine where PostgreSQL is not installed.
    monkeypatch.delenv("PG_BINDIR", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(postgres_module.glob, "glob", lambda pattern: [])

    assert find_postgres_bindir() is None


@pytest.mark.parametrize(
    "docker_host",
    [
        pytest.param("unix://{tmp}/docker.sock", id="no-unix-socket"),
        pytest.param("tcp://127.0.0.1:{port}", id="nothing-on-tcp-port"),
        pytest.param("ssh://docker@{tmp}", id="unsupported-scheme"),
    ],
)
def test_docker_is_unavailable_when_no_daemon_answers_at_docker_host(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, docker_host: str
) -> None:
    monkeypatch.setenv("DOCKER_HOST", docker_host.format(tmp=tmp_path, port=free_port()))

    assert not _docker_available()


def test_docker_is_available_when_a_daemon_accepts_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{port}")

        assert _docker_available()
