"""Real processes for tests: free ports, waiting on conditions, and servers stopped by handle."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import inspect
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, Self

import httpx
import uvicorn

__all__ = [
    "ServerProcess",
    "StartStop",
    "UvicornServer",
    "UvicornThread",
    "eventually",
    "free_port",
    "wait_for_http",
    "wait_until",
]

_EPHEMERAL_PORTS = Path("/proc/sys/net/ipv4/ip_local_port_range")
_handed_out: set[int] = set()
# Ports handed out are claimed across processes too: a lock on a file per port, held by the
# process that handed it out (the kernel drops it when that process ends). The newest claims are
# kept; an older one's server has long bound its port.
PORT_CLAIMS = Path(tempfile.gettempdir()) / "common-libs-ports"
_MAX_CLAIMS = 256
_claims: dict[int, IO[bytes]] = {}


def _ephemeral_ports(path: Path = _EPHEMERAL_PORTS) -> range:
    """The kernel's range for the local ports of outgoing connections (and of ``bind(0)``)."""
    try:
        low, high = map(int, path.read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


def _claim(port: int) -> bool:
    """Claim ``port`` for this process (an exclusive lock on its file in ``PORT_CLAIMS``); False
    when another live process holds the claim, or its file cannot be opened."""
    PORT_CLAIMS.mkdir(exist_ok=True)
    with contextlib.suppress(OSError):  # shared like /tmp, by whoever made it
        PORT_CLAIMS.chmod(0o1777)
    try:
        handle = (PORT_CLAIMS / str(port)).open("ab")
    except OSError:
        return False
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return False
    _claims[port] = handle
    while len(_claims) > _MAX_CLAIMS:
        _claims.pop(next(iter(_claims))).close()
    return True


def free_port(host: str = "127.0.0.1", *, attempts: int = 200) -> int:
    """A TCP port free on ``host`` right now, below the ephemeral range, not handed out before.

    A port from the ephemeral range (what binding port 0 gives) can become the local port of any
    outgoing connection before the server meant to listen there starts; below it only servers
    bind. A port is handed out once per process, and claimed against every other process that
    asks here (``PORT_CLAIMS``) until this one ends, so that servers started together never
    share one: two suites at a time once did, and a test's readiness check was answered by the
    other suite's server that had the port.
    """
    ephemeral = _ephemeral_ports()
    low = 20000 if ephemeral.start > 22000 else 1024
    candidates = [port for port in range(low, ephemeral.start) if port not in _handed_out]
    for port in random.sample(candidates, min(attempts, len(candidates))):
        if not _claim(port):
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                _claims.pop(port).close()
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free TCP port found on {host}")


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.05,
    message: str = "condition",
) -> float:
    """Poll ``condition`` until it is true; return the seconds it took (as :func:`eventually`
    does), or raise TimeoutError after ``timeout`` seconds."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started >= timeout:
            raise TimeoutError(f"{message} not met within {timeout:g} s")
        time.sleep(interval)
    return time.monotonic() - started


# How long past ``within`` an async check of :func:`eventually` may take before it is given up.
CHECK_GRACE_SECONDS = 10.0


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]],
    *,
    within: float = 10.0,
    interval: float = 0.02,
    message: str = "condition",
) -> float:
    """Poll ``condition`` (sync or async) without blocking the event loop until it is true.

    Returns the seconds it took; raises TimeoutError after ``within`` seconds. An async check
    that does not answer at all is given up ``CHECK_GRACE_SECONDS`` after that, with an error
    naming ``message`` whose cause shows where the check waited (a hang would otherwise show only
    as an idle event loop in the suite's ``faulthandler_timeout`` dump, minutes later).
    """
    started = time.monotonic()
    while True:
        result = condition()
        if inspect.isawaitable(result):
            left = started + within + CHECK_GRACE_SECONDS - time.monotonic()
            try:
                async with asyncio.timeout(left):
                    result = await result
            except TimeoutError as exc:
                raise TimeoutError(
                    f"{message}: its check did not answer within {within + CHECK_GRACE_SECONDS:g} s"
                ) from exc
        if result:
            return time.monotonic() - started
        if time.monotonic() - started >= within:
            raise TimeoutError(f"{message} not met within {within:g} s")
        await asyncio.sleep(interval)


def _answers(url: str, status: int) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == status
    except httpx.HTTPError:
        return False


def wait_for_http(url: str, *, status: int = 200, timeout: float = 20.0) -> None:
    """Wait until ``GET url`` answers ``status``."""
    wait_until(lambda: _answers(url, status), timeout=timeout, message=f"GET {url} -> {status}")


class StartStop:
    """``with`` support for what has ``start()`` (returning itself) and ``stop()``."""

    def start(self) -> Self:
        """Start; return self."""
        raise NotImplementedError  # pragma: no cover - every subclass defines it

    def stop(self) -> object:
        """Stop."""
        raise NotImplementedError  # pragma: no cover - every subclass defines it

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ServerProcess(StartStop):
    """A server started as a child process, stopped by its own handle (never by name).

    Output goes to ``log_path`` so that a test can read it (and a full pipe never blocks the child).
    ``env`` adds to this process's environment, or is the whole environment when ``inherit_env`` is
    false. ``user`` runs it as another account (PostgreSQL refuses to run as root).
    ``own_process_group`` starts it in a process group of its own: a Ctrl-C in the terminal then
    reaches only the process that started it, which stops it in its turn.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        ready_url: str | None = None,
        ready_timeout: float = 20.0,
        user: str | None = None,
        inherit_env: bool = True,
        own_process_group: bool = False,
    ) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self.env = {**(os.environ if inherit_env else {}), **(env or {})}
        self.cwd = cwd
        self.ready_url = ready_url
        self.ready_timeout = ready_timeout
        self.user = user
        self.own_process_group = own_process_group
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> Self:
        """Start the process and wait until ``ready_url`` answers 200 (when one is given)."""
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - argv comes from the test itself
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            user=self.user,
            process_group=0 if self.own_process_group else None,
        )
        if self.ready_url is not None:
            try:
                wait_until(
                    lambda: self._alive_and_answering(self.ready_url or ""),
                    timeout=self.ready_timeout,
                    message=f"{self.argv[0]} ready at {self.ready_url}",
                )
            except (TimeoutError, RuntimeError):
                self.stop()
                raise
        return self

    def _alive_and_answering(self, url: str) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"{self.argv} exited early; see {self.log_path}:\n{self.output()}")
        return _answers(url, 200)

    def output(self) -> str:
        """Everything the process has written so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """Stop the process abruptly (SIGKILL), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self, *, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """Ask the process to stop (SIGTERM), kill it after ``timeout``; return its exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.process.returncode


class UvicornServer(ServerProcess):
    """An ASGI app (``module:attribute``) under uvicorn on a free port of 127.0.0.1.

    Started, it is ready once ``ready_path`` answers 200; ``url`` is where it listens. With
    ``log_level=None`` uvicorn keeps its default level (for an app that configures its own logs).
    """

    def __init__(
        self,
        app: str,
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        app_dir: Path | None = None,
        factory: bool = False,
        ready_path: str = "/health",
        ready_timeout: float = 20.0,
        log_level: str | None = "warning",
        extra_args: Sequence[str] = (),
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        argv += [*(["--log-level", log_level] if log_level else []), *extra_args]
        if factory:
            argv.append("--factory")
        if app_dir is not None:
            argv += ["--app-dir", str(app_dir)]
        super().__init__(
            argv,
            log_path=log_path,
            env=env,
            cwd=cwd,
            ready_url=self.url + ready_path,
            ready_timeout=ready_timeout,
        )


class UvicornThread(StartStop):
    """An ASGI app object served by uvicorn in a daemon thread of this process (its own event
    loop) on a free port of 127.0.0.1; for a test that needs the app in process. Stopped on exit.
    """

    def __init__(self, app: Any, *, lifespan: Literal["auto", "on", "off"] = "off") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            lifespan=lifespan,
            loop="asyncio",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> Self:
        """Start the thread and wait until uvicorn serves."""
        self._thread.start()
        wait_until(
            lambda: self.server.started or not self._thread.is_alive(),
            timeout=20,
            message=f"server on port {self.port} started",
        )
        if not self.server.started:
            raise RuntimeError(f"the server on port {self.port} did not start")
        return self

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for its thread."""
        self.server.should_exit = True
        self._thread.join(timeout=15)
