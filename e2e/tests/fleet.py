"""Start and stop the whole fleet the way ``make up`` does (scripts/fleet.py), on free ports."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from common_libs.testing import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
FLEET_PYTHON = os.environ.get("FLEET_PYTHON", str(ROOT / ".tools" / "bin" / "python"))
PORT_VARIABLES = (
    "GATEWAY_PORT",
    "USER_SERVICE_PORT",
    "CATALOG_SERVICE_PORT",
    "ORDER_SERVICE_PORT",
    "CHAT_SERVICE_PORT",
    "FLEET_PG_PORT",
    "FLEET_NATS_PORT",
    "FLEET_PROMETHEUS_PORT",
)
_SERVICE_OF = {"gateway": "api-gateway-service"}
_STARTED = re.compile(r"started \(pid=(\d+)\)")
_STARTED_OR_AGAIN = re.compile(r"started(?: again)? \(pid=(\d+)")
_PID = re.compile(r"\(pid=(\d+)")


def port_open(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:port."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (and is not a zombie)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@dataclass
class Fleet:
    """A fleet started by ``scripts/fleet.py up`` with its own data folder and ports."""

    data_dir: Path
    ports: dict[str, int]
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.ports['GATEWAY_PORT']}"

    @property
    def nats_url(self) -> str:
        return f"nats://127.0.0.1:{self.ports['FLEET_NATS_PORT']}"

    @property
    def prometheus(self) -> str:
        return f"http://127.0.0.1:{self.ports['FLEET_PROMETHEUS_PORT']}"

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """The instant vector of ``promql`` in the fleet's Prometheus (now, or at ``at``)."""
        params = {"query": promql, **({"time": str(at)} if at is not None else {})}
        answer = get(f"{self.prometheus}/api/v1/query", params=params).json()
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def fetch(self, database: str, query: str, *args: object) -> list[Any]:
        """Rows of ``query`` in one of this fleet's databases."""
        return asyncio.run(fetch_rows(self.ports["FLEET_PG_PORT"], database, query, *args))

    @property
    def log_path(self) -> Path:
        return self.data_dir / "fleet-output.log"

    def log(self) -> str:
        """Everything the fleet printed so far: the processes write straight to it."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def lines_of(self, process: str) -> list[str]:
        """What one process (``gateway``, ``user-service``, ``fleet``, ...) printed.

        The runner's own lines read ``HH:MM:SS <name> | <text>`` (the text is returned); the
        services and the gateway write JSON objects naming their ``service`` (returned whole).
        """
        service = _SERVICE_OF.get(process, process)
        lines = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and record.get("service") == service:
                    lines.append(line)
                continue
            prefix, bar, text = line.partition(" | ")
            if bar and prefix.split(" ", 1)[-1].strip() == process:
                lines.append(text)
        return lines

    def run_fleet_command(self, command: str) -> subprocess.CompletedProcess[str]:
        """Run ``scripts/fleet.py <command>`` against this fleet's data folder and wait for it."""
        return subprocess.run(
            [FLEET_PYTHON, str(ROOT / "scripts" / "fleet.py"), command],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def launch(self, *, as_background_job: bool = False) -> Fleet:
        """Run ``fleet.py up`` in the background (its output replaces the previous log).

        ``as_background_job``: started as a shell starts ``make up &``, with SIGINT ignored
        (POSIX shells ignore it for asynchronous commands, and the child inherits that).
        """
        argv = [FLEET_PYTHON, str(ROOT / "scripts" / "fleet.py"), "up"]
        if as_background_job:
            argv = ["sh", "-c", 'trap "" INT; exec "$@"', "sh", *argv]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                argv,
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def start(self) -> Fleet:
        """Run ``fleet.py up`` in the background and wait until it says the fleet is ready.

        If it never does, the runner is stopped (Ctrl-C) before the error is raised, which ends
        with the tail of the fleet's output.
        """
        self.launch()
        try:
            wait_until(self._ready, timeout=120, message="fleet ready")
        except TimeoutError as exc:
            # What the runner was waiting for (its own lines) and why (the services'), as it was.
            output = self.log()[-8000:]
            self.stop()
            raise TimeoutError(f"{exc}; the fleet's output ended:\n{output}") from None
        except BaseException:
            self.stop()
            raise
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"the fleet exited early:\n{self.log()}")
        return "the fleet is ready" in self.log()

    def pid_of(self, process: str) -> int:
        """The pid of one supervised process (``user-service``, ``gateway``, ...)."""
        pids = [int(pid) for line in self.lines_of(process) for pid in _STARTED.findall(line)]
        assert len(pids) == 1, f"{process} started {len(pids)} times"
        return pids[0]

    def current_pid(self, process: str) -> int:
        """The pid of a supervised process's latest start (``started`` or ``started again``)."""
        started = [line for line in self.lines_of(process) if line.startswith("started")]
        return int(_PID.findall(started[-1])[0])

    def restarts(self, process: str) -> int:
        """How many times the supervisor started ``process`` again."""
        return sum(line.startswith("started again (") for line in self.lines_of(process))

    def replica_url(self, port_variable: str, replica: int) -> str:
        """A service replica's address (from 0), by its port variable (``ORDER_SERVICE_PORT``)."""
        return f"http://127.0.0.1:{self.ports[port_variable] + REPLICA_PORT_STEP * replica}"

    def pids(self) -> list[int]:
        """Every process the fleet started: supervised children, NATS, Prometheus, PostgreSQL's
        postmaster, and each one started again after it exited."""
        pids = [int(pid) for pid in _STARTED_OR_AGAIN.findall(self.log())]
        postmaster = self.postmaster_pid()
        if postmaster is not None:
            pids.append(postmaster)
        return pids

    def postmaster_pid(self) -> int | None:
        """PostgreSQL's postmaster, once its ``postmaster.pid`` holds it (the file exists a moment
        before its first line is written)."""
        try:
            first = (self.data_dir / "pgdata" / "postmaster.pid").read_text().split()[:1]
        except FileNotFoundError:
            return None
        return int(first[0]) if first and first[0].isdigit() else None

    def stop(self, sig: int = signal.SIGINT, timeout: float = 60) -> int:
        """Send ``sig`` to the runner (SIGINT is what Ctrl-C sends) and wait for it to exit."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                # Still the test's failure, but leave nothing running: SIGTERM ('make down')
                # stops the runner and what it started in every phase.
                self.process.terminate()
                self.process.wait(timeout)
                raise
        return self.process.returncode

    def remove(self) -> None:
        """Delete the fleet's data folder."""
        shutil.rmtree(self.data_dir, ignore_errors=True)


# Replica k (from 1) of a service listens on the service's port + 100 * (k - 1) (scripts/fleet.py).
REPLICA_PORT_STEP = 100


def _free_port_for(replicas: int, taken: set[int]) -> int:
    """A free port whose replicas' ports (every REPLICA_PORT_STEP above it) are free too, none of
    them in ``taken`` (the fleet's ports drawn so far), to which they are added.

    Each port is drawn on its own: without ``taken``, one drew FLEET_NATS_PORT equal to
    USER_SERVICE_PORT + 100, NATS bound it first, and the second user-service replica never did.
    """
    while True:
        port = free_port()
        ports = {port + REPLICA_PORT_STEP * k for k in range(replicas)}
        if ports & taken or any(port_open(other) for other in ports - {port}):
            continue
        taken |= ports
        return port


def new_fleet(extra_env: dict[str, str] | None = None, data_dir: Path | None = None) -> Fleet:
    """A fleet description with free ports and a fresh data folder (or ``data_dir``), not started.

    ``extra_env`` is added to the environment ``fleet.py up`` runs with, as a developer would
    export variables before ``make up`` (``FLEET_REPLICAS`` too: the replicas' ports are free).
    """
    if data_dir is None:
        data_dir = Path(tempfile.mkdtemp(prefix="fleet-e2e-"))
        # PostgreSQL runs as the unprivileged 'postgres' account when the tests run as root.
        data_dir.chmod(0o755)
    replicas = int((extra_env or {}).get("FLEET_REPLICAS", "1"))
    taken: set[int] = set()
    ports = {name: _free_port_for(replicas, taken) for name in PORT_VARIABLES}
    env = {**os.environ, "FLEET_DATA_DIR": str(data_dir), **(extra_env or {})}
    env.update({name: str(port) for name, port in ports.items()})
    return Fleet(data_dir=data_dir, ports=ports, env=env)


@contextmanager
def running_fleet(extra_env: dict[str, str] | None = None) -> Iterator[Fleet]:
    """A new fleet (:func:`new_fleet`), started; stopped and its data folder removed afterwards,
    whatever happened in the block."""
    fleet = new_fleet(extra_env)
    try:
        yield fleet.start()
    finally:
        fleet.stop()
        fleet.remove()


async def fetch_rows(pg_port: int, database: str, query: str, *args: object) -> list[Any]:
    """Rows of ``query`` in one of the fleet's databases (local 'postgres' is trusted)."""
    connection = await asyncpg.connect(
        host="127.0.0.1", port=pg_port, user="postgres", database=database
    )
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


def get(url: str, **kwargs: object) -> httpx.Response:
    """GET with a short timeout."""
    return httpx.get(url, timeout=10, **kwargs)  # type: ignore[arg-type]
