"""The fleet's processes under one supervisor: started together, kept running, stopped together.

Each process writes straight to the runner's own stdout and stderr (inherited file descriptors,
no relay): the services log one JSON object per line with their ``service`` name, the gateway's
access log says ``api-gateway-service``, so nothing needs a prefix. A relay that reads every
line and prints it again (what honcho does) cost about 170 µs of CPU per log line, one more busy
process on a two-core machine for every request the fleet answers.

A process that exits while the fleet runs is started again, as Kubernetes restarts a container:
after 1 s, then twice as long each time it exits again within 30 s of its start, at most 30 s
apart; each exit and each restart is a line of the runner's. That holds for the services and the
gateway (``add``) and for the servers the runner starts beside them (``watch``: PostgreSQL, NATS,
Prometheus), so one crashed process never stops the fleet.

Each child runs in a process group of its own, so Ctrl-C in the terminal reaches only the runner,
which then stops the children in an orderly way: SIGTERM to each, SIGKILL to any still running
after ``grace`` seconds. The same happens when the runner gets SIGTERM (``make down``). The
servers started beside the supervisor are stopped by the code that started them, after it.

A runner killed with SIGKILL can stop nothing, and its children, each in a group of its own, go
on running. So every process it starts is written down in a ``Ledger`` (a file per process, with
its start time), which ``make down`` reads to stop them when no runner is left to do it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

__all__ = ["Child", "Ledger", "Supervisor", "say_line", "signals_held", "spawn", "start_time"]

_LINE_LOCK = threading.Lock()
# Restarts: the first after FIRST_BACKOFF seconds, doubled for each exit within STEADY seconds of
# the start before it, at most MAX_BACKOFF (Kubernetes: 10 s doubled up to 5 minutes, reset after
# 10 minutes of running; a developer's fleet comes back sooner).
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0
STEADY = 30.0
# How often the supervisor looks at its children (a waitpid each, with WNOHANG). It never waits
# for "any child": that would reap the runner's other subprocesses (psql, the streams command)
# before their own wait.
_POLL_SECONDS = 0.1


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


def start_time(pid: int) -> str | None:
    """When ``pid`` started (clock ticks after boot, from ``/proc``); None when it is not running
    (gone, or a zombie). With the pid it names one process: a pid used again starts later."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    except (FileNotFoundError, IndexError):
        return None
    return None if fields[0] == "Z" else fields[19]


class Ledger:
    """The processes a runner started, a file each in ``directory``: named by the pid, holding
    the process's start time and the signal that stops it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def add(self, pid: int, stop_signal: signal.Signals) -> None:
        """Write down a process just started (nothing when it has already ended)."""
        started = start_time(pid)
        if started is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / str(pid)).write_text(f"{started} {stop_signal.name}\n")

    def running(self) -> dict[int, signal.Signals]:
        """The processes written down that still run (each with its stop signal)."""
        alive: dict[int, signal.Signals] = {}
        for entry in self.directory.glob("*") if self.directory.is_dir() else ():
            try:
                started, name = entry.read_text().split()
                pid = int(entry.name)
            except (OSError, ValueError):
                continue
            if start_time(pid) == started and name in signal.Signals.__members__:
                alive[pid] = signal.Signals[name]
        return alive

    def clear(self) -> None:
        """Forget every process (a runner that stopped its children, or found none left)."""
        shutil.rmtree(self.directory, ignore_errors=True)


class Child:
    """A process the supervisor keeps running: ``start`` starts it, and starts it again.

    ``stop_signal`` is what stops it in an orderly way when its runner is gone (``make down``
    after the runner was killed); a ``ledger`` (the supervisor's, see ``Supervisor.watch``)
    writes down each process it starts."""

    def __init__(
        self,
        name: str,
        start: Callable[[], subprocess.Popen[bytes]],
        *,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        self.name = name
        self._start = start
        self.stop_signal = stop_signal
        self.ledger: Ledger | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._started_at = 0.0
        self._quick_exits = 0
        self._restart_at: float | None = None

    def start(self) -> subprocess.Popen[bytes]:
        """Start it; a SIGINT or SIGTERM meanwhile arrives once ``process`` holds the handle."""
        with signals_held():
            self.process = self._start()
            self._started_at = time.monotonic()
            if self.ledger is not None:
                self.ledger.add(self.process.pid, self.stop_signal)
        return self.process

    def tend(self, now: float) -> None:
        """Notice that it exited (and say when it starts again), or start it again when due."""
        if self._restart_at is None:
            returncode = None if self.process is None else self.process.poll()
            if returncode is None:
                return
            ran = now - self._started_at
            self._quick_exits = self._quick_exits + 1 if ran < STEADY else 1
            delay = min(FIRST_BACKOFF * 2 ** (self._quick_exits - 1), MAX_BACKOFF)
            self._restart_at = now + delay
            say_line(self.name, f"{_how_it_ended(returncode)}; starting it again in {delay:g} s")
        elif now >= self._restart_at:
            self._restart_at = None
            self.restarts += 1
            process = self.start()
            say_line(self.name, f"started again (pid={process.pid}, restart {self.restarts})")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Supervisor:
    """Start named processes, keep them (and the servers it watches) running until a stop is
    asked for, then stop the processes it started."""

    def __init__(self, *, grace: float = 10.0, ledger: Ledger | None = None) -> None:
        self.grace = grace
        self.ledger = ledger
        self._children: list[Child] = []
        self._watched: list[Child] = []
        self.returncode: int | None = None
        self._stop_requested = threading.Event()

    def add(self, name: str, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path) -> None:
        """A process to start with ``run()``: ``argv`` run in ``cwd`` with exactly ``env``."""
        argv, env = list(argv), dict(env)

        def start() -> subprocess.Popen[bytes]:
            return spawn(argv, env=env, cwd=cwd, process_group=0)

        child = Child(name, start)
        child.ledger = self.ledger
        self._children.append(child)

    def watch(self, child: Child) -> None:
        """A server beside the supervisor (its code starts and stops it): restarted like the
        rest, and written down in the ledger from its next start on (watch it before that)."""
        child.ledger = self.ledger
        self._watched.append(child)

    def request_stop(self) -> None:
        """Stop the fleet from another thread (the runner's own readiness watcher)."""
        self._stop_requested.set()
        os.kill(os.getpid(), signal.SIGTERM)

    def run(self) -> int | None:
        """Run until SIGINT/SIGTERM (130/143; None when ``request_stop`` asked for it)."""
        previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        for fd in (1, 2):
            append_only(fd)
        try:
            for child in self._children:
                process = child.start()
                say_line(child.name, f"started (pid={process.pid})")
            while True:
                now = time.monotonic()
                for child in (*self._children, *self._watched):
                    child.tend(now)
                time.sleep(_POLL_SECONDS)
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
        alive = [child for child in self._children if child.running]
        for child in alive:
            assert child.process is not None
            child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for child in alive:
            assert child.process is not None
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say_line(child.name, f"did not stop within {self.grace:g} s; killing it")
                child.process.kill()
                child.process.wait()
            say_line(child.name, _how_it_ended(child.process.returncode))
