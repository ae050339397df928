"""A real, throwaway PostgreSQL for a test session.

Order of preference: ``TEST_DATABASE_URL`` (an existing server), a testcontainers container when a
Docker daemon answers, otherwise a private cluster made with the local server binaries
(``initdb`` + ``postgres`` on a free port bound to 127.0.0.1, fsync off, removed afterwards).

:func:`persistent_postgres` is the same local cluster kept in a folder across runs (what
``python -m common_libs.testing.standalone`` runs a service on), and :func:`ensure_database`
creates a database only when it is missing.
"""

from __future__ import annotations

import asyncio
import glob
import hashlib
import logging
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, unquote, urlsplit

import asyncpg  # type: ignore[import-untyped]

from common_libs.testing._system import apt_install, docker_available
from common_libs.testing.processes import ServerProcess, free_port, wait_until

__all__ = [
    "PostgresServer",
    "create_database",
    "ensure_database",
    "find_postgres_bindir",
    "persistent_postgres",
    "start_postgres",
]

# The name this module's Docker probe had before it moved to ``_system`` (shared with NATS).
_docker_available = docker_available

_logger = logging.getLogger("common_libs.testing")
_T = TypeVar("_T")
_SERVER_USER = "postgres"
# Where a kept cluster lives when the postgres account cannot reach the folder asked for.
_REACHABLE_ROOT = Path("/var/tmp")  # noqa: S108 - its folder is checked: see _kept_data_dir


@dataclass(frozen=True, slots=True)
class PostgresServer:
    """Where a PostgreSQL server listens and how to log in to it."""

    host: str
    port: int
    user: str
    password: str | None = None

    @classmethod
    def from_url(cls, url: str) -> PostgresServer:
        """Read host, port and credentials from a ``postgresql[+driver]://`` URL."""
        parts = urlsplit(url)
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=unquote(parts.username or _SERVER_USER),
            password=unquote(parts.password) if parts.password else None,
        )

    def url(self, database: str = "postgres", *, driver: str | None = "asyncpg") -> str:
        """A SQLAlchemy URL (``postgresql+asyncpg://``); ``driver=None`` gives a plain libpq URL."""
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        auth = quote(self.user, safe="")
        if self.password is not None:
            auth += ":" + quote(self.password, safe="")
        return f"{scheme}://{auth}@{self.host}:{self.port}/{database}"


def _run_async(factory: Callable[[], Awaitable[_T]]) -> _T:
    """Run a coroutine to completion from sync code, even inside a running event loop."""

    async def main() -> _T:
        return await factory()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


def _check_database_name(name: str) -> None:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name: {name!r}")


def create_database(server: PostgresServer, name: str) -> str:
    """(Re)create an empty database called ``name`` and return its asyncpg URL."""
    _check_database_name(name)

    async def recreate() -> None:
        conn = await asyncpg.connect(server.url(driver=None))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    _run_async(recreate)
    return server.url(name)


def ensure_database(server: PostgresServer, name: str) -> str:
    """Create the database ``name`` when it is missing (never drop it); return its asyncpg URL."""
    _check_database_name(name)

    async def create_if_missing() -> None:
        conn = await asyncpg.connect(server.url(driver=None))
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    _run_async(create_if_missing)
    return server.url(name)


def _answers(server: PostgresServer) -> bool:
    async def ping() -> None:
        conn = await asyncpg.connect(server.url(driver=None), timeout=2)
        await conn.close()

    try:
        _run_async(ping)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    return True


def find_postgres_bindir() -> Path | None:
    """Find the directory holding ``initdb`` and ``postgres`` (newest version wins)."""
    explicit = os.environ.get("PG_BINDIR")
    if explicit and (Path(explicit) / "initdb").exists():
        return Path(explicit)
    on_path = shutil.which("initdb")
    if on_path:
        return Path(os.path.realpath(on_path)).parent
    candidates = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if not candidates:
        return None
    newest = max(candidates, key=lambda path: int(Path(path).parent.parent.name))
    return Path(newest).parent


def _server_user() -> str | None:
    """As root, PostgreSQL must run as the unprivileged ``postgres`` user."""
    return _SERVER_USER if os.geteuid() == 0 else None


def _installed_bindir() -> Path:
    bindir = find_postgres_bindir()
    if bindir is None:  # pragma: no cover - depends on the machine
        apt_install(
            "postgresql",
            missing="PostgreSQL server binaries are missing",
            override="TEST_DATABASE_URL",
        )
        bindir = find_postgres_bindir()
        assert bindir is not None
    return bindir


def _initdb(bindir: Path, datadir: Path, user: str | None, *options: str) -> None:
    subprocess.run(  # noqa: S603
        [
            str(bindir / "initdb"),
            "--pgdata",
            str(datadir),
            "--username",
            _SERVER_USER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            *options,
        ],
        check=True,
        capture_output=True,
        user=user,
    )


@contextmanager
def _local_cluster() -> Iterator[PostgresServer]:
    bindir = _installed_bindir()
    user = _server_user()
    workdir = Path(tempfile.mkdtemp(prefix="pgtest-"))
    if user is not None:  # pragma: no cover - depends on whether the tests run as root
        shutil.chown(workdir, user=user, group=user)
    datadir = workdir / "data"
    try:
        _initdb(bindir, datadir, user, "--no-sync")
        port = free_port()
        server = PostgresServer(host="127.0.0.1", port=port, user=_SERVER_USER)
        process = ServerProcess(
            [
                str(bindir / "postgres"),
                "-D",
                str(datadir),
                "-p",
                str(port),
                "-h",
                "127.0.0.1",
                "-k",
                str(workdir),
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=300",
            ],
            log_path=workdir / "postgres.log",
            user=user,
        )
        process.start()
        try:
            wait_until(
                lambda: _answers(server), timeout=30, message="PostgreSQL accepts connections"
            )
            yield server
        finally:
            # SIGINT is PostgreSQL's "fast" shutdown: it ends open sessions instead of waiting.
            process.stop(sig=2)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def _docker_container() -> Iterator[PostgresServer]:  # pragma: no cover - needs a Docker engine
    from testcontainers.community.postgres import PostgresContainer

    with PostgresContainer("postgres:16-alpine", driver=None) as container:
        yield PostgresServer(
            host=container.get_container_host_ip(),
            port=int(container.get_exposed_port(5432)),
            user=container.username,
            password=container.password,
        )


@contextmanager
def start_postgres(*, prefer_docker: bool = True) -> Iterator[PostgresServer]:
    """Start a fresh PostgreSQL server and remove it afterwards."""
    if prefer_docker and docker_available():  # pragma: no cover - needs a Docker engine
        with _docker_container() as server:
            yield server
        return
    _logger.info("no Docker daemon answers; starting a local PostgreSQL cluster")
    with _local_cluster() as server:
        yield server


def _uid(user: str) -> int:  # pragma: no cover - as root only
    return pwd.getpwnam(user).pw_uid


def _reaches(user: str, folder: Path) -> bool:  # pragma: no cover - as root only
    """Whether ``user`` can enter ``folder`` (every folder above it too)."""
    probe = subprocess.run(["test", "-x", str(folder)], check=False, user=user)  # noqa: S603, S607
    return probe.returncode == 0


def _kept_data_dir(data_dir: Path, user: str | None) -> Path:
    """Where the kept cluster of ``data_dir`` lives: there, or as root where postgres reaches."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    if user is None:  # pragma: no cover - depends on whether the tests run as root
        return data_dir
    return _reachable_data_dir(data_dir, user)  # pragma: no cover - as root only


def _reachable_data_dir(data_dir: Path, user: str) -> Path:  # pragma: no cover - as root only
    """``data_dir``, or when the ``user`` account cannot reach it (a checkout under a 0700 home
    or pytest folder) a folder under /var/tmp named after its path, ``data_dir`` a symlink to it.
    """
    if data_dir.is_symlink():
        return data_dir.resolve()
    if data_dir.exists() or _reaches(user, data_dir.parent):
        return data_dir
    digest = hashlib.sha256(str(data_dir.absolute()).encode()).hexdigest()[:16]
    target = _REACHABLE_ROOT / f"fleet-standalone-{digest}"
    # /var/tmp is everyone's: a folder there that another account made is not ours to use.
    if target.is_symlink() or (target.exists() and target.stat().st_uid not in (0, _uid(user))):
        raise RuntimeError(f"{target} belongs to another account; remove it and retry")
    data_dir.symlink_to(target, target_is_directory=True)
    return target


def _init_kept_cluster(bindir: Path, datadir: Path, user: str | None) -> bool:
    """Create the cluster in ``datadir`` when it has none; say whether it did.

    initdb writes into a staging folder beside it, renamed once complete: a run stopped during
    initdb leaves no half-made cluster behind.
    """
    if (datadir / "PG_VERSION").exists():
        return False
    if datadir.exists() and any(datadir.iterdir()):
        raise RuntimeError(f"{datadir} holds no complete PostgreSQL cluster; remove it and retry")
    staging = datadir.with_name(datadir.name + ".initdb")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700, parents=True)
    if user is not None:  # pragma: no cover - depends on whether the tests run as root
        shutil.chown(staging, user=user, group=user)
    _initdb(bindir, staging, user)
    staging.rename(datadir)  # over an empty folder too
    return True


@contextmanager
def persistent_postgres(data_dir: Path, *, log_path: Path) -> Iterator[PostgresServer]:
    """A local cluster kept in ``data_dir`` across runs (initdb only when it has none), served
    on a free port of 127.0.0.1 until the block ends, then stopped (fast shutdown).

    The server runs in a process group of its own (a Ctrl-C in the terminal reaches only the
    caller, which stops it last), without a Unix socket, its output appended to ``log_path``.
    """
    bindir = _installed_bindir()
    user = _server_user()
    datadir = _kept_data_dir(data_dir, user)
    if _init_kept_cluster(bindir, datadir, user):
        _logger.info("created a PostgreSQL cluster in %s", datadir)
    port = free_port()
    server = PostgresServer(host="127.0.0.1", port=port, user=_SERVER_USER)
    # TCP on loopback only: a socket's path length limit would depend on the checkout.
    argv = [str(bindir / "postgres"), "-D", str(datadir), "-p", str(port), "-h", "127.0.0.1"]
    process = ServerProcess(
        [*argv, "-c", "unix_socket_directories="],
        log_path=log_path,
        user=user,
        own_process_group=True,
    )
    process.start()
    try:
        wait_until(lambda: _answers(server), timeout=30, message="PostgreSQL accepts connections")
        yield server
    finally:
        process.stop(sig=2, timeout=30)
