"""The fleet's local PostgreSQL: one cluster from the server binaries, in the fleet's data folder.

As root, ``initdb`` and ``postgres`` run as the ``postgres`` account (PostgreSQL refuses root) and
the cluster lives where that account can reach it. The server listens on 127.0.0.1 only, over TCP.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fleet_supervisor import Child, Supervisor, spawn

__all__ = ["PostgresError", "installed_binary", "psql", "running_postgres", "say"]


class PostgresError(Exception):
    """PostgreSQL cannot be found, created or started."""


def say(message: str) -> None:
    """A line of the runner's own output."""
    print(f"fleet | {message}", flush=True)


def installed_binary(name: str, debian_path: Path) -> Path | None:
    """``name`` on PATH, else where its Debian package puts it (a directory such as /usr/sbin
    is not on every user's PATH), else None."""
    found = shutil.which(name)
    if found:
        return Path(found)
    return debian_path if debian_path.exists() else None


def postgres_bindir() -> Path:
    """The directory of initdb/postgres/psql: PG_BINDIR, PATH, or Debian's newest version."""
    explicit = os.environ.get("PG_BINDIR")
    if explicit:
        return Path(explicit)
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parent.parent.name),
    )
    if not candidates:
        raise PostgresError(
            "PostgreSQL server binaries not found; run 'make up' (it installs them)."
        )
    return Path(candidates[-1]).parent


def server_user() -> str | None:
    """PostgreSQL refuses to run as root; as root it runs as the 'postgres' account."""
    return "postgres" if os.geteuid() == 0 else None


def as_server_user(argv: list[str]) -> list[str]:
    user = server_user()
    return ["runuser", "-u", user, "--", *argv] if user else argv


def postgres_data_dir(data_dir: Path) -> Path:
    """``<data>/pgdata``; a symlink to a place the postgres account can reach when it cannot."""
    link = data_dir / "pgdata"
    if link.exists() or server_user() is None:
        return link.resolve()
    probe = subprocess.run(as_server_user(["test", "-x", str(data_dir)]), check=False)
    if probe.returncode == 0:
        return link
    # The checkout lives where the postgres account cannot enter (a home directory, say):
    # keep the cluster under /var/lib and point .fleet/pgdata at it.
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    target = Path("/var/lib/fleet-postgres") / digest
    target.mkdir(parents=True, exist_ok=True)
    shutil.chown(target.parent, user="postgres", group="postgres")
    link.symlink_to(target)
    return target


def init_postgres(bindir: Path, datadir: Path) -> None:
    """Create the cluster when there is none, next to ``datadir``, and move it in when complete.

    An ``up`` stopped during initdb (Ctrl-C, ``make down``) so leaves no half-made cluster behind.
    """
    if (datadir / "PG_VERSION").exists():
        return
    if datadir.exists() and any(datadir.iterdir()):
        raise PostgresError(f"{datadir} holds no complete PostgreSQL cluster; remove it and retry.")
    staging = datadir.with_name(datadir.name + ".initdb")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    user = server_user()
    if user:
        shutil.chown(staging, user=user, group=user)
    say(f"creating the PostgreSQL cluster in {datadir}")
    argv = [str(bindir / "initdb"), "-D", str(staging)]
    argv += ["-U", "postgres", "-A", "trust", "-E", "UTF8"]
    # initdb itself is the child (no runuser in between), so that an interrupted up stops it.
    initdb = subprocess.Popen(argv, stdout=subprocess.DEVNULL, user=user)
    try:
        returncode = initdb.wait()
    except BaseException:
        initdb.terminate()  # initdb removes what it wrote, then exits
        initdb.wait()
        raise
    if returncode != 0:
        raise PostgresError(f"initdb failed with exit code {returncode}")
    if datadir.exists():
        datadir.rmdir()
    staging.rename(datadir)


def start_postgres(
    bindir: Path, datadir: Path, *, port: int, log_path: Path
) -> subprocess.Popen[bytes]:
    """The postmaster, in the background, its output appended to ``log_path``."""
    log = log_path.open("ab")
    argv = [str(bindir / "postgres"), "-D", str(datadir), "-p", str(port)]
    # TCP on loopback only; no Unix socket (its path length limit would depend on the checkout).
    argv += ["-h", "127.0.0.1", "-c", "unix_socket_directories="]
    # Four services, each with a pool of up to 20-30 connections (pool plus overflow), and the
    # benchmark's throwaway catalogs: more than the default 100 at full load.
    argv += ["-c", "max_connections=300"]
    # Its own session: a Ctrl-C in the terminal reaches this runner, which stops PostgreSQL last.
    with log:
        return spawn(
            argv, stdout=log, stderr=subprocess.STDOUT, user=server_user(), start_new_session=True
        )


def psql(bindir: Path, port: int, sql: str) -> str:
    """Run one statement as ``postgres`` in the ``postgres`` database; its output, unaligned."""
    argv = [str(bindir / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"]
    argv += ["-d", "postgres", "-tAc", sql]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip())
    return result.stdout.strip()


def wait_for_postgres(
    bindir: Path, port: int, process: subprocess.Popen[bytes], log_path: Path
) -> None:
    """Until PostgreSQL accepts connections (at most 30 s)."""
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise PostgresError(f"PostgreSQL exited; see {log_path}")
        try:
            psql(bindir, port, "SELECT 1")
            return
        except RuntimeError:
            if time.monotonic() > deadline:
                raise PostgresError("PostgreSQL did not accept connections within 30 s") from None
            time.sleep(0.1)


@contextmanager
def running_postgres(
    data_dir: Path, port: int, *, supervisor: Supervisor | None = None
) -> Iterator[Path]:
    """PostgreSQL on ``port`` with its cluster in ``<data_dir>/pgdata`` (created if missing)
    until the block ends; yields the directory of its binaries (for ``psql``). With a
    ``supervisor``, it is started again when it exits meanwhile."""
    log_path = data_dir / "logs" / "postgres.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    bindir = postgres_bindir()
    datadir = postgres_data_dir(data_dir)
    init_postgres(bindir, datadir)
    server = Child(
        "postgresql",
        lambda: start_postgres(bindir, datadir, port=port, log_path=log_path),
        stop_signal=signal.SIGINT,  # PostgreSQL's fast shutdown
    )
    if supervisor is not None:
        supervisor.watch(server)  # before the start: the supervisor's ledger writes it down
    try:
        # Started inside the try, the handle stored before a 'make down' (or Ctrl-C) that lands
        # right after the start is raised: it still stops it.
        postgres = server.start()
        say(f"PostgreSQL on 127.0.0.1:{port} (data in {data_dir / 'pgdata'})")
        wait_for_postgres(bindir, port, postgres, log_path)
        yield bindir
    finally:
        if server.process is not None:  # the one running now
            server.process.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown
            server.process.wait(30)
            say("PostgreSQL stopped")
