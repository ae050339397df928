"""A real, throwaway NATS server with JetStream for a test session.

Order of preference: ``TEST_NATS_URL`` (an existing server; read by the plugin's ``nats_server``
fixture), a testcontainers container when a Docker daemon answers, otherwise the local
``nats-server`` binary on a free port bound to 127.0.0.1 with its JetStream store in a temporary
directory (removed afterwards). Debian's ``nats-server`` package is installed when the binary is
missing. :func:`persistent_nats` keeps its store in a folder across runs (what
``python -m common_libs.testing.standalone`` runs a service with).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from common_libs.testing._system import apt_install, docker_available
from common_libs.testing.processes import ServerProcess, free_port

__all__ = ["NatsServer", "find_nats_server", "persistent_nats", "start_nats"]

_logger = logging.getLogger("common_libs.testing")
# Debian installs the binary into /usr/sbin, which is not on an unprivileged user's PATH.
_DEBIAN_BINARY = Path("/usr/sbin/nats-server")


@dataclass(frozen=True, slots=True)
class NatsServer:
    """Where a NATS server (JetStream enabled) listens: ``nats://host:port``."""

    url: str


def find_nats_server() -> Path | None:
    """The ``nats-server`` binary: on PATH, else Debian's, else None."""
    on_path = shutil.which("nats-server")
    if on_path:
        return Path(on_path)
    return _DEBIAN_BINARY if _DEBIAN_BINARY.exists() else None


@contextmanager
def _local_server(
    port: int | None = None,
    store_dir: Path | None = None,
    *,
    log_path: Path | None = None,
    own_process_group: bool = False,
) -> Iterator[NatsServer]:
    binary = find_nats_server()
    if binary is None:  # pragma: no cover - depends on the machine
        apt_install(
            "nats-server", missing="the nats-server binary is missing", override="TEST_NATS_URL"
        )
        binary = find_nats_server()
        assert binary is not None
    workdir = Path(tempfile.mkdtemp(prefix="natstest-"))
    try:
        port, monitor_port = port or free_port(), free_port()
        server = ServerProcess(
            [
                str(binary),
                "-a",
                "127.0.0.1",
                "-p",
                str(port),
                "-m",
                str(monitor_port),
                "-js",
                "-sd",
                str(store_dir or workdir / "store"),
            ],
            log_path=log_path or workdir / "nats-server.log",
            # Answers 200 once JetStream is enabled (the monitor binds to 127.0.0.1 too).
            ready_url=f"http://127.0.0.1:{monitor_port}/healthz?js-enabled-only=true",
            ready_timeout=30,
            own_process_group=own_process_group,
        )
        with server:
            yield NatsServer(url=f"nats://127.0.0.1:{port}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def _docker_container() -> Iterator[NatsServer]:  # pragma: no cover - needs a Docker engine
    from testcontainers.community.nats import NatsContainer

    with NatsContainer("nats:2.10-alpine", jetstream=True) as container:
        yield NatsServer(url=container.nats_uri())


@contextmanager
def start_nats(
    *, prefer_docker: bool = True, port: int | None = None, store_dir: Path | None = None
) -> Iterator[NatsServer]:
    """Start a fresh NATS server with JetStream and remove it (and what it stored) afterwards.

    With ``port`` and ``store_dir`` it is always the local binary, on that port, keeping its
    store in ``store_dir`` (not removed): a test stops the broker and starts it again as it was.
    """
    if port is not None or store_dir is not None:
        with _local_server(port, store_dir) as server:
            yield server
        return
    if prefer_docker and docker_available():  # pragma: no cover - needs a Docker engine
        with _docker_container() as server:
            yield server
        return
    _logger.info("no Docker daemon answers; starting a local nats-server")
    with _local_server() as server:
        yield server


@contextmanager
def persistent_nats(store_dir: Path, *, log_path: Path) -> Iterator[NatsServer]:
    """The local binary on a free port of 127.0.0.1, its JetStream store kept in ``store_dir``,
    until the block ends.

    The server runs in a process group of its own (a Ctrl-C in the terminal reaches only the
    caller, which stops it in its turn), its output appended to ``log_path``.
    """
    with _local_server(store_dir=store_dir, log_path=log_path, own_process_group=True) as server:
        yield server
