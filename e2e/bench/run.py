"""Run every measurement once, in an order that keeps them apart, and write the results.

Items 1-3 and 9 (reads) first, while the fleet's processes are fresh; then 4 (orders), 6 (chat)
and 10 (every service at 64 connections); then the services' RSS (7, after that load); then 5
(catalog scale, with processes and data of its own); then start-to-ready (7); then 8 (tracing
cost, with processes of its own). A measurement that fails becomes an ``error`` row and the
others still run. Results go to ``bench-results/bench.md`` and ``bench.json`` at the root of the
repository (git-ignored), and the table is printed at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.fixtures import make_fixtures
from bench.fleet_access import Target, fleet_target
from bench.measure_chat import measure_chat, measure_read_model_lag
from bench.measure_orders import measure_orders
from bench.measure_processes import measure_ready, measure_rss
from bench.measure_reads import bench_apps, measure_floor, measure_gateway, measure_hop
from bench.measure_scale import measure_scale
from bench.measure_tracing import measure_tracing
from bench.measure_users import measure_users
from bench.measure_wide import measure_wide
from bench.report import Row, measured, say, write_results
from bench.runs import Settings
from bench.wrk import require_wrk, summary_script
from tests.fleet import ROOT

__all__ = ["main"]

RESULTS_DIR = Path(os.environ.get("BENCH_RESULTS_DIR", ROOT / "bench-results"))


def _attempt(
    settings: Settings, item: int, label: str, measure: Callable[[], list[Row]]
) -> list[Row]:
    if item not in settings.items:
        return []
    say(f"{item} {label}")
    return measured(item, label, measure)


def _measure_all(target: Target, settings: Settings, workdir: Path) -> list[Row]:
    say("making products and customers")
    fixtures = make_fixtures(target, customers=settings.customers)
    script = summary_script(workdir)
    rows: list[Row] = []
    rows += _attempt(
        settings,
        1,
        "Gateway overhead",
        lambda: measure_gateway(target, fixtures, settings, script),
    )
    if settings.items & {2, 3}:
        with bench_apps(target, fixtures, workdir) as apps:
            rows += _attempt(
                settings,
                2,
                "Read path vs floor",
                lambda: measure_floor(target, fixtures, apps, settings, script),
            )
            rows += _attempt(
                settings,
                3,
                "One hop vs local",
                lambda: measure_hop(apps, fixtures, settings, script),
            )
    rows += _attempt(
        settings,
        9,
        "Users: authenticated read",
        lambda: measure_users(target, fixtures, settings, workdir),
    )
    rows += _attempt(
        settings, 4, "Orders", lambda: measure_orders(target, fixtures, settings, workdir)
    )
    rows += _attempt(
        settings,
        6,
        "Chat time to first token",
        lambda: measure_chat(target, runs=settings.rounds, requests=settings.chat_requests),
    )
    rows += _attempt(
        settings,
        6,
        "Chat read model lag",
        lambda: measure_read_model_lag(target, fixtures, samples=settings.lag_samples),
    )
    rows += _attempt(
        settings,
        10,
        "Every service at 64 connections",
        lambda: measure_wide(target, fixtures, settings, workdir, script),
    )
    rows += _attempt(settings, 7, "RSS after the load", lambda: measure_rss(target))
    rows += _attempt(
        settings, 5, "Catalog scale", lambda: measure_scale(target, settings, workdir, script)
    )
    rows += _attempt(
        settings,
        7,
        "Start to /ready",
        lambda: measure_ready(target, workdir, starts=settings.rounds),
    )
    rows += _attempt(
        settings,
        8,
        "Tracing cost",
        lambda: measure_tracing(target, fixtures, settings, workdir, script),
    )
    return rows


def _commit() -> str:
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH, read-only
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or "unknown"


def _load() -> str:
    return " / ".join(f"{value:.1f}" for value in os.getloadavg())


def main() -> int:
    """Measure, write ``bench-results/``, print the table; 1 if a measurement failed."""
    settings = Settings.from_environ(os.environ)
    require_wrk()
    started_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    clock = time.monotonic()
    load_before = _load()
    workdir = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    rows: list[Row] = []
    fleet = "a running fleet (BENCH_GATEWAY_URL)"
    try:
        with fleet_target() as target:
            if target.own:
                fleet = "a fleet started by the benchmark (scripts/fleet.py up, rate limits raised)"
            rows = _measure_all(target, settings, workdir)
    finally:
        if any(row.status == "error" for row in rows) or not rows:
            say(f"logs of the benchmark's processes are kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    rows.sort(key=lambda row: row.item)
    context: dict[str, Any] = {
        "started": started_at,
        "commit": _commit(),
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": _load(),
        "fleet": fleet,
        "method": (
            f"every figure the median of {settings.rounds} runs; every ratio the median of "
            "per-round ratios of runs measured back to back (two; four for item 8)"
        ),
        "seconds": round(time.monotonic() - clock, 1),
        "settings": {**asdict(settings), "items": sorted(settings.items)},
    }
    print(write_results(RESULTS_DIR, rows, context), flush=True)
    say(f"written: bench-results/bench.md and bench.json ({context['seconds']:.0f} s)")
    return 1 if any(row.status == "error" for row in rows) else 0
