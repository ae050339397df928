"""What the chaos suite is made of: a mixed client load that records every attempt, a TCP relay that
can slow a connection down, and links in a network namespace that can be cut.

The load's clients behave as careful clients do: each asks again after a 5xx, a lost connection or
a ``409`` in flight, and an order is asked again with the same ``Idempotency-Key`` until it is
answered ``201``. Every attempt is recorded (kind, start, end, outcome), so that a fault's window
can be read afterwards: how many requests, which errors, the longest burst of them, when the last.

This kernel has no ``netem`` queueing discipline (``tc qdisc add ... netem`` answers "Specified
qdisc kind is unknown"), so a link's latency is the relay's and its cut is the kernel's: a
``pfifo`` queue of length 0 on both ends of the link's veth pair drops every packet, as a cable
pulled out does (connections hang; nothing is refused).
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

__all__ = ["REPORT", "Attempt", "Load", "Namespace", "Relay", "Window", "table"]

# A client gives up on one attempt after this long (the order service's catalog deadline is 5 s).
ATTEMPT_TIMEOUT = 15.0


@dataclass(frozen=True)
class Attempt:
    kind: str
    started: float
    ended: float
    # "ok", the status of an unexpected answer ("502"), or the transport error ("ReadTimeout").
    outcome: str

    @property
    def failed(self) -> bool:
        return self.outcome != "ok"


@dataclass(frozen=True)
class Placed:
    """An order the load placed: the key it used to the end, the answer's order id and items."""

    key: str
    order_id: str
    product_id: str
    quantity: int


Ask = Callable[[httpx.Client], httpx.Response]


@dataclass
class Load:
    """Client loops in threads, each paced, each recording every attempt, until ``stop``."""

    attempts: list[Attempt] = field(default_factory=list)
    placed: list[Placed] = field(default_factory=list)
    open_keys: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _done: threading.Event = field(default_factory=threading.Event)
    _going: threading.Event = field(default_factory=threading.Event)
    _idle: threading.Condition = field(default_factory=threading.Condition)
    _in_flight: int = 0
    _threads: list[threading.Thread] = field(default_factory=list)

    def run(self, kind: str, base_url: str, ask: Ask, *, ok: Iterable[int], pace: float) -> None:
        """Start a loop: ``ask`` once, record it, wait ``pace`` seconds, again."""
        accepted = frozenset(ok)

        def loop() -> None:
            with httpx.Client(base_url=base_url, timeout=ATTEMPT_TIMEOUT) as client:
                while not self._done.is_set():
                    if not self._begin():
                        continue
                    started = time.monotonic()
                    try:
                        status = ask(client).status_code
                        outcome = "ok" if status in accepted else str(status)
                    except httpx.TransportError as exc:
                        outcome = type(exc).__name__
                    finally:
                        self._end()
                    self._record(Attempt(kind, started, time.monotonic(), outcome))
                    self._done.wait(pace)

        thread = threading.Thread(target=loop, name=f"load-{kind}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def run_orders(
        self,
        kind: str,
        base_url: str,
        path: str,
        token: str,
        product_ids: list[str],
        *,
        pace: float,
    ) -> None:
        """Place orders one after another, each asked again with its key until ``201``."""
        keys = (f"chaos-{kind}-{n}-{secrets.token_hex(4)}" for n in itertools.count())
        current: dict[str, object] = {}

        def ask(client: httpx.Client) -> httpx.Response:
            if not current:
                current.update(key=next(keys), product=secrets.choice(product_ids))
                with self._lock:
                    self.open_keys[kind] = str(current["key"])
            body = {
                "items": [{"product_id": current["product"], "quantity": 1}],
                "shipping_address": {
                    "name": "Chaos Monkey",
                    "line1": "1 Fault Line",
                    "city": "Faultville",
                    "postal_code": "00000",
                    "country": "US",
                },
            }
            headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(current["key"])}
            response = client.post(path, json=body, headers=headers)
            if response.status_code == 201:
                order = response.json()
                with self._lock:
                    self.placed.append(
                        Placed(str(current["key"]), order["id"], str(current["product"]), 1)
                    )
                    del self.open_keys[kind]
                current.clear()
            return response

        self.run(kind, base_url, ask, ok={201}, pace=pace)

    def _begin(self) -> bool:
        """Wait while paused; whether an attempt may start (not when stopped meanwhile)."""
        self._going.wait(1)
        with self._idle:
            if not self._going.is_set() or self._done.is_set():
                return False
            self._in_flight += 1
            return True

    def _end(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def start(self) -> None:
        """Let the loops ask (they wait until then, and again after ``pause``)."""
        self._going.set()

    def pause(self) -> None:
        """No new attempt from now on; returns once none is in flight."""
        with self._idle:
            self._going.clear()
            if not self._idle.wait_for(lambda: self._in_flight == 0, ATTEMPT_TIMEOUT + 5):
                raise TimeoutError("attempts still in flight after the clients' timeout")

    def _record(self, attempt: Attempt) -> None:
        with self._lock:
            self.attempts.append(attempt)

    def since(self, start: float) -> list[Attempt]:
        """The attempts that ended at or after ``start`` (those in flight then too), in the order
        they started."""
        with self._lock:
            return sorted((a for a in self.attempts if a.ended >= start), key=_started)

    def served_since(self, start: float) -> set[str]:
        """The kinds with at least one successful attempt started at or after ``start``."""
        return {a.kind for a in self.since(start) if not a.failed and a.started >= start}

    @property
    def kinds(self) -> set[str]:
        return {thread.name.removeprefix("load-") for thread in self._threads}

    def stop(self) -> None:
        self._done.set()
        self._going.set()
        for thread in self._threads:
            thread.join(ATTEMPT_TIMEOUT + 5)


def _started(attempt: Attempt) -> float:
    return attempt.started


@dataclass(frozen=True)
class Window:
    """What the load saw from a fault's injection (``start``) until the fleet had recovered."""

    fault: str
    start: float
    attempts: list[Attempt]

    @property
    def errors(self) -> list[Attempt]:
        return [a for a in self.attempts if a.failed]

    def errors_by_kind(self) -> str:
        """``order: 502 x2, ReadTimeout x1; login: 502 x1`` (``-`` without errors)."""
        by_kind: dict[str, Counter[str]] = {}
        for attempt in self.errors:
            by_kind.setdefault(attempt.kind, Counter())[attempt.outcome] += 1
        return (
            "; ".join(
                f"{kind}: " + ", ".join(f"{outcome} x{n}" for outcome, n in sorted(seen.items()))
                for kind, seen in sorted(by_kind.items())
            )
            or "-"
        )

    def longest_burst(self) -> float:
        """The longest run of one client's failed attempts, in seconds from the start of its first
        to the end of its last (each kind of request is one client asking again)."""
        longest = 0.0
        first: dict[str, float] = {}
        for attempt in self.attempts:
            if attempt.failed:
                first.setdefault(attempt.kind, attempt.started)
                longest = max(longest, attempt.ended - first[attempt.kind])
            else:
                first.pop(attempt.kind, None)
        return longest

    def recovered_after(self) -> float:
        """Seconds from the injection to the end of the last failed attempt (0: none failed)."""
        return max((a.ended - self.start for a in self.errors), default=0.0)

    def row(self) -> str:
        return (
            f"| {self.fault} | {len(self.attempts)} | {len(self.errors)} | "
            f"{self.errors_by_kind()} | {self.longest_burst():.1f} s | "
            f"{self.recovered_after():.1f} s |"
        )


TABLE_HEADER = (
    "| fault | requests | errors | errors by kind | longest error burst | recovered after |",
    "|---|---:|---:|---|---:|---:|",
)
# Each fault's window once its test ran (None before): the table at the end of the run.
REPORT: dict[str, Window | None] = {}


def table() -> list[str]:
    """The Markdown table of the faults that ran (empty when none did)."""
    rows = [window.row() for window in REPORT.values() if window is not None]
    return [*TABLE_HEADER, *rows] if rows else []


class Relay:
    """Accepts TCP connections on ``host`` (a free port) and joins each to ``127.0.0.1:target``.

    ``delay`` seconds (0: none) are added before each chunk sent towards the target: the latency
    of a slow link, added to every request's way there.
    """

    def __init__(self, host: str, target: int) -> None:
        self.host = host
        self.target = target
        self.delay = 0.0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> Relay:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._join, self.host, 0), self._loop
        ).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc_info: object) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _close(self) -> None:
        """Stop accepting, and end every joined connection (their pipes close both sockets)."""
        self._server.close()
        pipes = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in pipes:
            task.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)
        await self._server.wait_closed()

    async def _join(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        try:
            target_in, target_out = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            client_out.close()
            await client_out.wait_closed()
            return
        await asyncio.gather(
            self._pipe(client_in, target_out, slow=True),
            self._pipe(target_in, client_out, slow=False),
            return_exceptions=True,
        )

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, slow: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                if slow and self.delay:
                    await asyncio.sleep(self.delay)
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()


def _run(program: str, *args: str, check: bool = True) -> None:
    """Run one of iproute2's programs (``ip``, ``tc``), found on PATH or in /usr/sbin."""
    path = shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")
    if path is None:
        raise FileNotFoundError(f"{program} (Debian's iproute2) is not installed")
    subprocess.run([path, *args], check=check, capture_output=True, text=True)


def _ip(*args: str) -> None:
    _run("ip", *args)


def _tc(*args: str) -> None:
    _run("tc", *args)


class Namespace:
    """A network namespace joined to this one by veth pairs, one per link.

    Link ``i`` is ``10.<net>.<i>.1`` on this side and ``10.<net>.<i>.2`` inside; a process run
    with ``command`` lives inside and reaches this side only through the links.
    """

    def __init__(self, links: int) -> None:
        tag = secrets.token_hex(3)
        self.name = f"chaos-{tag}"
        self._tag = tag
        self._net = 64 + secrets.randbelow(187)
        self.links = links

    def outside(self, link: int) -> str:
        return f"10.{self._net}.{link}.1"

    def inside(self, link: int) -> str:
        return f"10.{self._net}.{link}.2"

    def _ends(self, link: int) -> tuple[str, str]:
        return f"c{self._tag}o{link}", f"c{self._tag}i{link}"

    def __enter__(self) -> Namespace:
        _ip("netns", "add", self.name)
        try:
            _ip("-n", self.name, "link", "set", "lo", "up")
            for link in range(self.links):
                out, into = self._ends(link)
                _ip("link", "add", out, "type", "veth", "peer", "name", into, "netns", self.name)
                _ip("addr", "add", f"{self.outside(link)}/30", "dev", out)
                _ip("link", "set", out, "up")
                _ip("-n", self.name, "addr", "add", f"{self.inside(link)}/30", "dev", into)
                _ip("-n", self.name, "link", "set", into, "up")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        # Deleting the namespace deletes the veth ends inside it, and so their peers.
        _run("ip", "netns", "del", self.name, check=False)

    def command(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    @contextmanager
    def cut(self, link: int) -> Iterator[None]:
        """Every packet on the link dropped, both ways, until the block ends."""
        out, into = self._ends(link)
        _tc("qdisc", "add", "dev", out, "root", "pfifo", "limit", "0")
        try:
            _tc("-n", self.name, "qdisc", "add", "dev", into, "root", "pfifo", "limit", "0")
            try:
                yield
            finally:
                _tc("-n", self.name, "qdisc", "del", "dev", into, "root")
        finally:
            _tc("qdisc", "del", "dev", out, "root")
