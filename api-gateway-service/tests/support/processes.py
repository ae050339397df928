"""Real processes for the tests (nginx, with stdout and stderr apart), stopped by handle.

``free_port`` and ``wait_until`` are common-libs' (re-exported for the tests' imports).
"""

from __future__ import annotations

import os
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from common_libs.testing import free_port, wait_until

__all__ = ["ManagedProcess", "free_port", "http_answers", "wait_until"]


def http_answers(url: str, status: int = 200) -> bool:
    """Tell whether ``GET url`` answers ``status`` right now."""
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(response.status == status)
    except urllib.error.HTTPError as error:
        return error.code == status
    except OSError:
        return False


class ManagedProcess:
    """A child process whose stdout and stderr go to files, stopped through its own handle only."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        name: str,
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.stdout_path = log_dir / f"{name}.stdout.log"
        self.stderr_path = log_dir / f"{name}.stderr.log"
        with self.stdout_path.open("wb") as stdout, self.stderr_path.open("wb") as stderr:
            self.popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                env=dict(env) if env is not None else None,
                cwd=cwd,
            )

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.popen.pid

    def is_running(self) -> bool:
        """Tell whether the child has not exited yet."""
        return self.popen.poll() is None

    def stdout(self) -> str:
        """Everything the child wrote to stdout so far."""
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        """Everything the child wrote to stderr so far."""
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, probe: Callable[[], bool], *, timeout: float = 20.0) -> None:
        """Wait until ``probe`` holds, failing at once (with its stderr) if the child exits."""

        def ready() -> bool:
            if not self.is_running():
                raise RuntimeError(
                    f"{self.name} exited with {self.popen.returncode}:\n{self.stderr()}"
                )
            return probe()

        wait_until(ready, timeout=timeout, message=f"{self.name} ready")

    def stop(self, sig: signal.Signals = signal.SIGTERM, *, timeout: float = 10.0) -> int:
        """Send ``sig`` to this child only, wait, kill it if it lingers; return its status."""
        if self.is_running():
            os.kill(self.popen.pid, sig)
            try:
                return self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        return self.popen.wait(timeout=timeout)
