"""Real processes for tests: free ports, waiting on conditions, and servers stopped by handle."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import httpx

__all__ = ["ServerProcess", "free_port", "wait_for_http", "wait_until"]


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the OS for a TCP port that is free right now on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.05,
    message: str = "condition",
) -> None:
    """Poll ``condition`` until it is true, or raise TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{message} not met within {timeout:g} s")
        time.sleep(interval)


def _answers(url: str, status: int) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == status
    except httpx.HTTPError:
        return False


def wait_for_http(url: str, *, status: int = 200, timeout: float = 20.0) -> None:
    """Wait until ``GET url`` answers ``status``."""
    wait_until(lambda: _answers(url, status), timeout=timeout, message=f"GET {url} -> {status}")


class ServerProcess:
    """A server started as a child process, stopped by its own handle (never by name).

    Output goes to ``log_path`` so that a test can read it (and a full pipe never blocks the child).
    ``user`` runs it as another account (PostgreSQL refuses to run as root).
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
    ) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self.ready_url = ready_url
        self.ready_timeout = ready_timeout
        self.user = user
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

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
