"""Start the tests' real servers: uvicorn upstream stubs, and nginx through run_local.py."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from support.processes import ManagedProcess, free_port, http_answers

__all__ = [
    "SERVICE_DIR",
    "SERVICE_NAMES",
    "Gateway",
    "Stub",
    "gateway_environment",
    "nginx_binary",
    "start_gateway",
    "start_stubs",
]

SERVICE_DIR = Path(__file__).resolve().parents[2]
RUN_LOCAL = SERVICE_DIR / "scripts" / "run_local.py"
STUB_DIR = Path(__file__).resolve().parent

# The four services and the variable that points the gateway at each.
SERVICE_NAMES = ("user", "catalog", "order", "chat")
_UPSTREAM_VARIABLES = {name: f"{name.upper()}_SERVICE_UPSTREAM" for name in SERVICE_NAMES}
_GATEWAY_VARIABLE = re.compile(r"^(GATEWAY_|NGINX_ENVSUBST_|[A-Z]+_SERVICE_UPSTREAM$)")


@dataclass(frozen=True)
class Stub:
    """A running upstream stub; talk to it directly (not through the gateway) for its records."""

    name: str
    port: int
    process: ManagedProcess

    @property
    def address(self) -> str:
        """host:port for an upstream setting."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """Base URL of the stub itself."""
        return f"http://{self.address}"

    def _control(self, action: str, *, method: str = "GET") -> Any:
        request = urllib.request.Request(f"{self.url}/__stub__/{action}", method=method)
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)

    def requests(self) -> list[dict[str, Any]]:
        """Every request the stub received so far (method, path, request_id)."""
        records: list[dict[str, Any]] = self._control("requests")
        return records

    def request_ids(self) -> set[str]:
        """The X-Request-ID of every request the stub received so far."""
        return {record["request_id"] for record in self.requests() if record["request_id"]}

    def disconnects(self) -> list[str]:
        """The ids of the waits that ended because the client went away."""
        keys: list[str] = self._control("disconnects")
        return keys

    def release(self, key: str) -> None:
        """Let the stream or slow answer waiting on ``key`` continue."""
        self._control(f"release?id={quote(key)}", method="POST")


def nginx_binary() -> str:
    """The nginx executable: from PATH, else where Debian installs it (/usr/sbin)."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if found is None:
        raise RuntimeError("nginx is not installed (make test installs Debian's nginx-light)")
    return found


def start_stubs(log_dir: Path, names: tuple[str, ...] = SERVICE_NAMES) -> dict[str, Stub]:
    """Start one uvicorn stub per name (all at once), wait until each answers, return them."""
    stubs: dict[str, Stub] = {}
    for name in names:
        port = free_port()
        argv = [
            sys.executable,
            "-m",
            "uvicorn",
            "upstream_stub:app",
            "--app-dir",
            str(STUB_DIR),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            # The services run uvicorn[standard], whose HTTP parser is httptools (llhttp); h11, the
            # fallback, accepts and refuses other bytes.
            "--http",
            "httptools",
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        env = {**os.environ, "STUB_SERVICE_NAME": name}
        process = ManagedProcess(argv, name=f"stub-{name}", log_dir=log_dir, env=env)
        stubs[name] = Stub(name=name, port=port, process=process)
    for stub in stubs.values():
        stub.process.wait_ready(functools.partial(http_answers, f"{stub.url}/__stub__/ready"))
    return stubs


def gateway_environment(
    upstreams: Mapping[str, str], overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """This process's environment without any gateway setting, plus the given ones."""
    env = {key: value for key, value in os.environ.items() if not _GATEWAY_VARIABLE.match(key)}
    env.update({_UPSTREAM_VARIABLES[name]: address for name, address in upstreams.items()})
    env.update(overrides or {})
    return env


@dataclass(frozen=True)
class Gateway:
    """A running nginx started by scripts/run_local.py in its own work directory."""

    port: int
    workdir: Path
    process: ManagedProcess

    @property
    def url(self) -> str:
        """Base URL of the gateway."""
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> int:
        """Stop nginx (SIGTERM to the master, by its pid), remove its workdir, return its status."""
        status = self.process.stop(signal.SIGTERM)
        shutil.rmtree(self.workdir, ignore_errors=True)
        return status

    def access_log(self) -> list[dict[str, Any]]:
        """The JSON access log lines written so far (nginx writes them to stdout). A line not yet
        ended by its newline is still being written: it is left for a later read."""
        written, _, _ = self.process.stdout().rpartition("\n")
        return [json.loads(line) for line in written.splitlines() if line.strip()]


def start_gateway(
    *,
    log_dir: Path,
    upstreams: Mapping[str, str],
    overrides: Mapping[str, str] | None = None,
    name: str = "gateway",
) -> Gateway:
    """Start nginx on a free port in front of ``upstreams`` (service name -> host:port)."""
    port = free_port()
    # A fresh directory in the system temp dir: searchable by nginx's unprivileged workers.
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    env = gateway_environment(
        upstreams, {"GATEWAY_LISTEN": f"127.0.0.1:{port}", **(overrides or {})}
    )
    argv = [sys.executable, str(RUN_LOCAL), "--workdir", str(workdir), "--nginx", nginx_binary()]
    process = ManagedProcess(argv, name=name, log_dir=log_dir, env=env)
    gateway = Gateway(port=port, workdir=workdir, process=process)
    process.wait_ready(lambda: http_answers(f"{gateway.url}/healthz"))
    return gateway
