"""The benchmark's settings and its unit of measurement: two wrk runs back to back.

A ratio never divides figures taken at different times: each round measures the subject and
its reference one right after the other (alternating which goes first, to cancel drift), the
round gives one ratio, and the figure is the median of the rounds' ratios. On two cores shared
with other work this is what keeps a ratio meaningful while the absolute figures wander.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.processes import cpu_seconds
from bench.report import median, say
from bench.wrk import WrkResult, run_wrk

__all__ = ["Pair", "Settings", "medians", "paired_runs"]


@dataclass(frozen=True)
class Settings:
    """How long and how hard to load (``BENCH_*`` variables override the defaults)."""

    rounds: int = 3
    seconds: float = 3.0
    connections: int = 16
    order_seconds: float = 5.0
    order_connections: int = 32
    scale_connections: int = 4
    scale_small: int = 10_000
    scale_large: int = 1_000_000
    customers: int = 32
    chat_requests: int = 10
    lag_samples: int = 200
    wide_seconds: float = 45.0
    items: frozenset[int] = frozenset(range(1, 11))

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        """BENCH_ROUNDS, BENCH_SECONDS, BENCH_ORDER_SECONDS, BENCH_WIDE_SECONDS (item 10's run);
        BENCH_SCALE_1M=0 skips item 5,
        BENCH_SCALE_LARGE makes its large catalog smaller (for a quick trial of the harness),
        BENCH_ITEMS (say ``4`` or ``1,2,3``) measures only those items."""
        large = int(environ.get("BENCH_SCALE_LARGE", cls.scale_large))
        if environ.get("BENCH_SCALE_1M", "1") == "0":
            large = 0
        return cls(
            rounds=int(environ.get("BENCH_ROUNDS", cls.rounds)),
            seconds=float(environ.get("BENCH_SECONDS", cls.seconds)),
            order_seconds=float(environ.get("BENCH_ORDER_SECONDS", cls.order_seconds)),
            wide_seconds=float(environ.get("BENCH_WIDE_SECONDS", cls.wide_seconds)),
            scale_large=large,
            items=_items(environ.get("BENCH_ITEMS", "")) or cls.items,
        )


def _items(text: str) -> frozenset[int]:
    items = frozenset(int(part) for part in text.replace(",", " ").split())
    if not items <= frozenset(range(1, 11)):
        raise ValueError(f"BENCH_ITEMS names items 1 to 10, not {text!r}")
    return items


@dataclass(frozen=True)
class Pair:
    """One round: the subject and its reference, measured back to back.

    ``*_cpu_us`` is the CPU time per request of the process that answered (when its pid was
    given): what the request costs the server, whatever else ran on the machine meanwhile.
    """

    subject: WrkResult
    reference: WrkResult
    subject_cpu_us: float | None = None
    reference_cpu_us: float | None = None

    @property
    def throughput_ratio(self) -> float:
        return self.subject.rps / self.reference.rps

    @property
    def p50_ratio(self) -> float:
        return self.subject.p50_ms / self.reference.p50_ms

    @property
    def p99_ratio(self) -> float:
        return self.subject.p99_ms / self.reference.p99_ms

    @property
    def added_p50_ms(self) -> float:
        return self.subject.p50_ms - self.reference.p50_ms

    def as_json(self) -> dict[str, object]:
        return {
            "subject": self.subject.as_json(),
            "reference": self.reference.as_json(),
            "subject_cpu_us_per_request": _rounded(self.subject_cpu_us),
            "reference_cpu_us_per_request": _rounded(self.reference_cpu_us),
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _measured(
    url: str, pid: int | None, *, script: Path, seconds: float, connections: int
) -> tuple[WrkResult, float | None]:
    """One wrk run, and the CPU time per request of process ``pid`` during it."""
    before = None if pid is None else cpu_seconds(pid)
    result = run_wrk(url, script=script, seconds=seconds, connections=connections)
    if pid is None or before is None or not result.requests:
        return result, None
    return result, (cpu_seconds(pid) - before) / result.requests * 1e6


def paired_runs(
    label: str,
    subject_url: str,
    reference_url: str,
    *,
    script: Path,
    settings: Settings,
    connections: int,
    pids: tuple[int | None, int | None] = (None, None),
) -> list[Pair]:
    """Warm both up, then ``settings.rounds`` back-to-back pairs; any failed request raises.

    ``pids``: the processes answering the subject and the reference, whose CPU time per request
    is then recorded too.
    """
    for url in (subject_url, reference_url):
        run_wrk(url, script=script, seconds=1, connections=connections)
    pairs = []
    for number in range(settings.rounds):
        runs: dict[str, tuple[WrkResult, float | None]] = {}
        order = ("subject", "reference") if number % 2 == 0 else ("reference", "subject")
        for which in order:
            url, pid = (subject_url, pids[0]) if which == "subject" else (reference_url, pids[1])
            runs[which] = _measured(
                url, pid, script=script, seconds=settings.seconds, connections=connections
            )
        pair = Pair(
            subject=runs["subject"][0],
            reference=runs["reference"][0],
            subject_cpu_us=runs["subject"][1],
            reference_cpu_us=runs["reference"][1],
        )
        failed = pair.subject.errors + pair.reference.errors
        if failed:
            raise RuntimeError(f"{label}: {failed} failed requests in round {number + 1}")
        pairs.append(pair)
        say(
            f"{label} round {number + 1}: {pair.subject.rps:.0f} / {pair.reference.rps:.0f} "
            f"req/s (x{pair.throughput_ratio:.2f}), p50 {pair.subject.p50_ms:.1f} / "
            f"{pair.reference.p50_ms:.1f} ms"
        )
    return pairs


def medians(pairs: list[Pair]) -> dict[str, float]:
    """Median of each figure over the rounds (the ratios are medians of per-round ratios)."""
    return {
        "subject_rps": median(pair.subject.rps for pair in pairs),
        "reference_rps": median(pair.reference.rps for pair in pairs),
        "subject_p50_ms": median(pair.subject.p50_ms for pair in pairs),
        "reference_p50_ms": median(pair.reference.p50_ms for pair in pairs),
        "subject_p99_ms": median(pair.subject.p99_ms for pair in pairs),
        "reference_p99_ms": median(pair.reference.p99_ms for pair in pairs),
        "throughput_ratio": median(pair.throughput_ratio for pair in pairs),
        "p50_ratio": median(pair.p50_ratio for pair in pairs),
        "p99_ratio": median(pair.p99_ratio for pair in pairs),
        "added_p50_ms": median(pair.added_p50_ms for pair in pairs),
        "subject_cpu_us": median(pair.subject_cpu_us or 0.0 for pair in pairs),
        "reference_cpu_us": median(pair.reference_cpu_us or 0.0 for pair in pairs),
    }
