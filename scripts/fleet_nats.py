"""The fleet's local NATS server: JetStream, its store in the fleet's data folder.

``nats-server`` (Debian's package) listens on 127.0.0.1 only and keeps its JetStream store in
``<data>/nats`` across restarts. The runner waits until the JetStream API answers, creates the
fleet's streams with ``python -m common_libs.events`` and stops the server by its own pid.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fleet_postgres import installed_binary, say
from fleet_supervisor import Child, Supervisor, spawn

__all__ = ["NatsError", "create_streams", "jetstream_answers", "running_nats"]

# Debian installs the binary into /usr/sbin, which is not on an unprivileged user's PATH.
DEBIAN_BINARY = Path("/usr/sbin/nats-server")


class NatsError(Exception):
    """NATS cannot be found or started, or its streams cannot be created."""


def nats_server_binary() -> Path:
    """``nats-server`` on PATH, else Debian's."""
    binary = installed_binary("nats-server", DEBIAN_BINARY)
    if binary is None:
        raise NatsError("nats-server not found; run 'make up' (it installs it).")
    return binary


def start_nats(
    binary: Path, store_dir: Path, *, port: int, log_path: Path
) -> subprocess.Popen[bytes]:
    """The server, in the background, its output appended to ``log_path``."""
    argv = [str(binary), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store_dir)]
    # Its own session: a Ctrl-C in the terminal reaches the runner, which stops NATS after the
    # services (they may still publish while they stop).
    with log_path.open("ab") as log:
        return spawn(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def jetstream_answers(port: int) -> bool:
    """Whether the server on 127.0.0.1:``port`` answers a JetStream API request right now.

    Speaks the NATS protocol itself (the runner has no client library): asks ``$JS.API.INFO``
    and expects an account info answer; without JetStream the server says no one responds.
    """
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            reader = sock.makefile("rb")
            if not reader.readline().startswith(b"INFO "):
                return False
            sock.sendall(
                b'CONNECT {"verbose":false,"headers":true,"no_responders":true}\r\n'
                b"SUB _INBOX.fleet 1\r\n"
                b"PUB $JS.API.INFO _INBOX.fleet 0\r\n\r\n"
            )
            while line := reader.readline():
                if line.startswith(b"PING"):
                    sock.sendall(b"PONG\r\n")
                elif line.startswith(b"MSG "):
                    body = reader.read(int(line.split()[-1]))
                    return b"account_info_response" in body and b'"error"' not in body
                elif line.startswith((b"HMSG ", b"-ERR")):  # no responders (503), or refused
                    return False
    except OSError:  # refused, reset, or no answer within the socket's timeout
        return False
    return False


def wait_for_nats(port: int, process: subprocess.Popen[bytes], log_path: Path) -> None:
    """Until JetStream answers (at most 30 s)."""
    deadline = time.monotonic() + 30
    while not jetstream_answers(port):
        if process.poll() is not None:
            raise NatsError(f"nats-server exited; see {log_path}")
        if time.monotonic() > deadline:
            raise NatsError("NATS JetStream did not answer within 30 s")
        time.sleep(0.05)


def create_streams(python: Path, nats_url: str) -> None:
    """Create (or update) the fleet's streams with ``python -m common_libs.events``."""
    argv = [str(python), "-m", "common_libs.events", "--nats-url", nats_url]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    except subprocess.TimeoutExpired:  # run() has killed it
        raise NatsError(f"creating the streams on {nats_url} took over 60 s") from None
    if result.returncode != 0:
        raise NatsError(f"creating the streams failed:\n{result.stdout}{result.stderr}".rstrip())
    say(result.stdout.strip() or "streams ready")


def stop_nats(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM (NATS's graceful exit: the store is flushed), SIGKILL after ``timeout``."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running_nats(
    data_dir: Path, port: int, *, supervisor: Supervisor | None = None
) -> Iterator[str]:
    """NATS with JetStream on 127.0.0.1:``port``, its store in ``<data_dir>/nats``, until the
    block ends; yields its URL. With a ``supervisor``, it is started again when it exits."""
    log_path = data_dir / "logs" / "nats.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    store_dir = data_dir / "nats"
    store_dir.mkdir(parents=True, exist_ok=True)
    url = f"nats://127.0.0.1:{port}"
    binary = nats_server_binary()
    server = Child("nats", lambda: start_nats(binary, store_dir, port=port, log_path=log_path))
    if supervisor is not None:
        supervisor.watch(server)  # before the start: the supervisor's ledger writes it down
    try:
        # Started inside the try, the handle stored before a 'make down' (or Ctrl-C) that lands
        # right after the start is raised: it still stops it.
        process = server.start()
        say(f"NATS started (pid={process.pid}) on {url}, JetStream data in {store_dir}")
        wait_for_nats(port, process, log_path)
        yield url
    finally:
        if server.process is not None:  # the one running now
            stop_nats(server.process)
        say("NATS stopped")
