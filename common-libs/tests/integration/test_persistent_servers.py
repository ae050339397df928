"""The kept PostgreSQL cluster and NATS store of the standalone runner: data across restarts."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import nats
import pytest

from common_libs.testing import postgres as postgres_module
from common_libs.testing.nats import persistent_nats
from common_libs.testing.postgres import (
    PostgresServer,
    ensure_database,
    persistent_postgres,
)


@pytest.fixture
def kept_dir(tmp_path: Path) -> Iterator[Path]:
    """Where a kept cluster goes; what it became (a folder under /var/tmp, as root) is removed."""
    data_dir = tmp_path / ".run" / "postgres"
    yield data_dir
    if data_dir.is_symlink():
        target = data_dir.resolve()
        shutil.rmtree(target, ignore_errors=True)
        shutil.rmtree(target.with_name(target.name + ".initdb"), ignore_errors=True)


async def fetch(server: PostgresServer, database: str, query: str) -> object:
    conn = await asyncpg.connect(server.url(database, driver=None))
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


async def execute(server: PostgresServer, database: str, statement: str) -> None:
    conn = await asyncpg.connect(server.url(database, driver=None))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def test_kept_cluster_keeps_its_data_across_restarts(kept_dir: Path, tmp_path: Path) -> None:
    log_path = tmp_path / "postgres.log"
    with persistent_postgres(kept_dir, log_path=log_path) as first:
        ensure_database(first, "kept")
        asyncio.run(execute(first, "kept", "CREATE TABLE notes (text text)"))
        asyncio.run(execute(first, "kept", "INSERT INTO notes VALUES ('still here')"))

    with persistent_postgres(kept_dir, log_path=log_path) as second:
        url = ensure_database(second, "kept")  # present: left as it is
        kept = asyncio.run(fetch(second, "kept", "SELECT text FROM notes"))

    assert kept == "still here"
    assert url == second.url("kept")
    assert (kept_dir / "PG_VERSION").exists()
    assert "database system is ready" in log_path.read_text()


def test_kept_cluster_runs_in_its_own_process_group_and_stops(
    kept_dir: Path, tmp_path: Path
) -> None:
    with persistent_postgres(kept_dir, log_path=tmp_path / "postgres.log") as server:
        pid = int((kept_dir / "postmaster.pid").read_text().split()[0])
        assert os.getpgid(pid) == pid
        assert asyncio.run(fetch(server, "postgres", "SELECT 1")) == 1

    assert not Path(f"/proc/{pid}").exists()


def test_a_folder_without_a_complete_cluster_is_refused(kept_dir: Path, tmp_path: Path) -> None:
    kept_dir.mkdir(parents=True)
    (kept_dir / "stray.txt").write_text("not a cluster")

    with (
        pytest.raises(RuntimeError, match="holds no complete PostgreSQL cluster"),
        persistent_postgres(kept_dir, log_path=tmp_path / "postgres.log"),
    ):
        pass  # pragma: no cover - never entered


@pytest.mark.skipif(os.geteuid() != 0, reason="as root only: PostgreSQL runs as postgres")
def test_a_folder_under_var_tmp_that_another_account_made_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "var-tmp"
    shared.mkdir()
    monkeypatch.setattr(postgres_module, "_REACHABLE_ROOT", shared)
    data_dir = tmp_path / "private" / "postgres"  # under pytest's 0700 folder
    digest = hashlib.sha256(str(data_dir.absolute()).encode()).hexdigest()[:16]
    planted = shared / f"fleet-standalone-{digest}"
    planted.mkdir()
    os.chown(planted, 12345, 12345)

    with pytest.raises(RuntimeError, match="belongs to another account"):
        postgres_module._reachable_data_dir(data_dir, "postgres")


def test_ensure_database_refuses_unsafe_names(postgres_server: PostgresServer) -> None:
    with pytest.raises(ValueError, match="unsafe database name"):
        ensure_database(postgres_server, 'x"; DROP DATABASE postgres; --')


async def test_kept_nats_store_survives_a_restart_in_its_own_process_group(
    tmp_path: Path,
) -> None:
    store, log_path = tmp_path / "nats", tmp_path / "nats.log"
    with persistent_nats(store, log_path=log_path) as first:
        client = await nats.connect(first.url, connect_timeout=2, allow_reconnect=False)
        try:
            js = client.jetstream()
            await js.add_stream(name="KEPT", subjects=["kept.>"])
            await js.publish("kept.one", b"hello")
        finally:
            await client.close()

    with persistent_nats(store, log_path=log_path) as second:
        client = await nats.connect(second.url, connect_timeout=2, allow_reconnect=False)
        try:
            info = await client.jetstream().stream_info("KEPT")
        finally:
            await client.close()

    assert info.state.messages == 1
    assert "Server is ready" in log_path.read_text()
