"""The fleet's processes under one supervisor: started together, stopped together.

Each process writes straight to the runner's own stdout and stderr (inherited file descriptors,
no relay): the services log one JSON object per line with their ``service`` name, the gateway's
access log says ``api-gateway-service``, so nothing needs a prefix. A relay that reads every
line and prints it again (what honcho does) cost about 170 µs of CPU per log line, one more busy
process on a two-core machine for every request the fleet answers.

Each child runs in a process group of its own, so Ctrl-C in the terminal reaches only the runner,
which then stops the children in an orderly way: SIGTERM to each, SIGKILL to any still running
after ``grace`` seconds. The same happens when one child exits on its own (the fleet is whole or
it is stopped), when another child of the runner exits (the servers it runs beside the
supervisor: PostgreSQL, NATS, Prometheus) and when the runner gets SIGTERM (``make down``).
"""

from __future__ import annotations

import fcntl
import os
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

__all__ = ["Supervisor", "say_line", "signals_held", "spawn"]

_LINE_LOCK = threading.Lock()


def append_only(fd: int) -> None:
    """Make writes to ``fd`` appends when it is a regular file (``make up > fleet.log``).

    The children share this process's stdout and stderr, and nginx opens ``/dev/stdout`` anew
    for its access log, appending. Writes through a shared description opened without O_APPEND
    go to its own offset, which knows nothing of what nginx appended: they would write over
    nginx's lines. With O_APPEND every write lands at the end. (Pipes and terminals need
    nothing.)
    """
    if stat.S_ISREG(os.fstat(fd).st_mode):
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)


_HELD = {signal.SIGINT, signal.SIGTERM}


@contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM held back until the block has ended; wrap ``process = start_...()``.

    The runner turns both into KeyboardInterrupt. One landing between the fork and the moment the
    caller has stored the handle (a busy machine makes that window milliseconds long) would leave
    a child running that nothing stops. Held back until the assignment is done, the signal
    arrives as the block ends, and the caller's ``finally`` has the handle. (Held only inside the
    function that spawns, it was raised on that function's way out, before the caller had
    stored what it returned: a 'make down' during start-up left a NATS server running.)

    The mask is the calling thread's: a signal sent to the process goes to a thread that does not
    block it. A thread started inside the block inherits the mask, so the runner starts its
    threads there and they never take these signals.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _unblock_held() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)


def spawn(argv: Sequence[str], **options: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen`` whose child starts with SIGINT and SIGTERM unblocked (the runner
    spawns inside ``signals_held()``, and a child inherits the blocked set through exec)."""
    return subprocess.Popen(argv, preexec_fn=_unblock_held, **options)


def _how_it_ended(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        return f"stopped ({signal.Signals(-returncode).name})"
    return f"stopped (rc={returncode})"


def say_line(name: str, text: str) -> None:
    """A line of the runner's own, ``HH:MM:SS name | text``, in one write: it never interleaves."""
    line = f"{datetime.now():%H:%M:%S} {name} | {text}\n".encode()
    with _LINE_LOCK:
        os.write(1, line)


class _Stop(Exception):
    """Raised by the signal handler to leave the wait for a child."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signum)


@dataclass(frozen=True)
class _Spec:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: Path


class Supervisor:
    """Start named processes, wait until one exits or a stop is asked for, stop all of them."""

    def __init__(self, *, grace: float = 10.0) -> None:
        self.grace = grace
        self._specs: list[_Spec] = []
        self._children: dict[int, tuple[str, subprocess.Popen[bytes]]] = {}
        self.returncode: int | None = None
        self._stop_requested = threading.Event()

    def add(self, name: str, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path) -> None:
        """A process to start with ``run()``: ``argv`` run in ``cwd`` with exactly ``env``."""
        self._specs.append(_Spec(name, list(argv), dict(env), cwd))

    def request_stop(self) -> None:
        """Stop the fleet from another thread (the runner's own readiness watcher)."""
        self._stop_requested.set()
        os.kill(os.getpid(), signal.SIGTERM)

    def run(self) -> int | None:
        """Run until a child exits (its return code) or SIGINT/SIGTERM (130/143, or None)."""
        previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        for fd in (1, 2):
            append_only(fd)
        try:
            for spec in self._specs:
                with signals_held():
                    process = spawn(spec.argv, env=dict(spec.env), cwd=spec.cwd, process_group=0)
                    self._children[process.pid] = (spec.name, process)
                say_line(spec.name, f"started (pid={process.pid})")
            pid, status = os.wait()
            returncode = os.waitstatus_to_exitcode(status)
            if pid in self._children:
                name, process = self._children[pid]
                process.returncode = returncode
            else:
                # A child of the runner that was not started here (PostgreSQL, NATS, Prometheus
                # run beside the supervisor): the fleet is no longer whole either.
                name = f"pid {pid}"
            say_line(name, _how_it_ended(returncode))
            self.returncode = returncode
        except _Stop as stop:
            if not self._stop_requested.is_set():
                self.returncode = 128 + stop.signum
        finally:
            # A second Ctrl-C while stopping must not leave children behind.
            for sig in previous:
                signal.signal(sig, signal.SIG_IGN)
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self.returncode

    def _stop_all(self) -> None:
        alive = [(name, p) for name, p in self._children.values() if p.returncode is None]
        for _, process in alive:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for name, process in alive:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say_line(name, f"did not stop within {self.grace:g} s; killing it")
                process.kill()
                process.wait()
            say_line(name, _how_it_ended(process.returncode))
