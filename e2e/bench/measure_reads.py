"""Items 1-3: the gateway's overhead, the read path against its floor, one inter-service hop.

Each is a throughput ratio of two wrk runs measured back to back (``runs.paired_runs``), with
the same wrk settings on both sides: one thread, 16 connections, a few seconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import fleet as runner
from common_libs.testing import free_port

from bench.fixtures import Fixtures
from bench.fleet_access import Target
from bench.processes import Process, listening_pid
from bench.report import Row, at_least, at_most
from bench.runs import Settings, medians, paired_runs

__all__ = ["BenchApps", "bench_apps", "measure_floor", "measure_gateway", "measure_hop"]

BENCH_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class BenchApps:
    """The floor and hop applications of this folder, running."""

    floor: str
    hop: str
    floor_pid: int
    hop_pid: int


def _bench_venv() -> Path:
    venv = Path(os.environ.get("BENCH_VENV", BENCH_DIR / ".venv"))
    if not (venv / "bin" / "uvicorn").exists():
        raise RuntimeError("the bench venv is missing: run 'make bench' (it makes bench/.venv)")
    return venv


def _app(name: str, module: str, env: dict[str, str], workdir: Path) -> Process:
    port = free_port()
    # The fleet's uvicorn command line for a service, with this module as the application.
    argv = [str(_bench_venv() / "bin" / "uvicorn"), f"{module}:create_app", "--factory"]
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    return Process(
        name=name,
        argv=argv,
        cwd=BENCH_DIR,
        env={**os.environ, **env},
        log_path=workdir / f"{name}.log",
        ready_url=f"http://127.0.0.1:{port}/ready",
    )


@contextmanager
def bench_apps(target: Target, fixtures: Fixtures, workdir: Path) -> Iterator[BenchApps]:
    """Start the floor (on the catalog's database) and the hop app (on the catalog)."""
    floor = _app(
        "floor-app",
        "floor_app",
        {"BENCH_FLOOR_DATABASE_URL": target.database_dsn(runner.CATALOG.database)},
        workdir,
    )
    hop = _app(
        "hop-app",
        "hop_app",
        {
            "BENCH_HOP_CATALOG_URL": target.url(runner.CATALOG),
            "BENCH_HOP_PRODUCT_IDS": fixtures.read_product["id"],
        },
        workdir,
    )
    try:
        floor.start()
        hop.start()
        yield BenchApps(
            floor=floor.ready_url.removesuffix("/ready"),
            hop=hop.ready_url.removesuffix("/ready"),
            floor_pid=floor.pid,
            hop_pid=hop.pid,
        )
    finally:
        hop.stop()
        floor.stop()


def measure_gateway(
    target: Target, fixtures: Fixtures, settings: Settings, script: Path
) -> list[Row]:
    """1. ``GET /api/products/{id}`` through nginx against the same request to the catalog."""
    product_id = fixtures.read_product["id"]
    pairs = paired_runs(
        "1 gateway/direct",
        f"{target.gateway}/api/products/{product_id}",
        f"{target.url(runner.CATALOG)}/products/{product_id}",
        script=script,
        settings=settings,
        connections=settings.connections,
    )
    figures = medians(pairs)
    detail = (
        f"wrk -t1 -c{settings.connections}, {settings.rounds} rounds of {settings.seconds:g} s; "
        f"through the gateway {figures['subject_rps']:.0f} req/s, p50 "
        f"{figures['subject_p50_ms']:.2f} ms; straight to the catalog "
        f"{figures['reference_rps']:.0f} req/s, p50 {figures['reference_p50_ms']:.2f} ms "
        "(medians); ratio and added p50 are medians of the per-round figures"
    )
    throughput = at_least(
        1,
        "Gateway: GET /api/products/{id} throughput / direct",
        figures["throughput_ratio"],
        "x",
        0.9,
    )
    throughput.detail = detail
    throughput.runs = [pair.as_json() for pair in pairs]
    added = Row(1, "Gateway: added p50 latency", figures["added_p50_ms"], "ms", "none set", "info")
    added.detail = "p50 through the gateway minus p50 direct, per round, median of the rounds"
    return [throughput, added]


def measure_floor(
    target: Target, fixtures: Fixtures, apps: BenchApps, settings: Settings, script: Path
) -> list[Row]:
    """2. The catalog's ``GET /products/{id}`` against the bare Starlette + asyncpg floor."""
    product_id = fixtures.read_product["id"]
    pairs = paired_runs(
        "2 catalog/floor",
        f"{target.url(runner.CATALOG)}/products/{product_id}",
        f"{apps.floor}/products/{product_id}",
        script=script,
        settings=settings,
        connections=settings.connections,
        pids=(listening_pid(target.port(runner.CATALOG)), apps.floor_pid),
    )
    figures = medians(pairs)
    row = at_least(
        2,
        "Read path: GET /products/{id} throughput / floor",
        figures["throughput_ratio"],
        "x",
        0.55,
    )
    row.detail = (
        f"wrk -t1 -c{settings.connections}, {settings.rounds} rounds of {settings.seconds:g} s, "
        "the same product on the same database; the floor is bench/floor_app.py (Starlette + "
        "an asyncpg pool, the catalog's statement, the same JSON), run by uvicorn as the "
        f"service is; catalog {figures['subject_rps']:.0f} req/s (p50 "
        f"{figures['subject_p50_ms']:.2f} ms, {figures['subject_cpu_us']:.0f} µs of CPU per "
        f"request), floor {figures['reference_rps']:.0f} req/s (p50 "
        f"{figures['reference_p50_ms']:.2f} ms, {figures['reference_cpu_us']:.0f} µs)"
    )
    row.runs = [pair.as_json() for pair in pairs]
    tail = at_most(
        2, "Read path: GET /products/{id} p99 / floor's p99", figures["p99_ratio"], "x", 3
    )
    tail.detail = (
        "the same runs: wrk's p99 of the catalog over the floor's, per round, median of the "
        f"rounds; catalog p99 {figures['subject_p99_ms']:.1f} ms, floor "
        f"{figures['reference_p99_ms']:.1f} ms (medians)"
    )
    return [row, tail]


def measure_hop(apps: BenchApps, fixtures: Fixtures, settings: Settings, script: Path) -> list[Row]:
    """3. A route that asks the catalog over HTTP against one that answers from memory."""
    product_id = fixtures.read_product["id"]
    pairs = paired_runs(
        "3 hop/local",
        f"{apps.hop}/hop/products/{product_id}",
        f"{apps.hop}/local/products/{product_id}",
        script=script,
        settings=settings,
        connections=settings.connections,
        pids=(apps.hop_pid, apps.hop_pid),
    )
    figures = medians(pairs)
    row = at_least(
        3, "One hop: catalog call / same answer locally", figures["throughput_ratio"], "x", 0.35
    )
    row.detail = (
        f"wrk -t1 -c{settings.connections}, {settings.rounds} rounds of {settings.seconds:g} s "
        "against bench/hop_app.py (FastAPI, one uvicorn process): GET /hop/products/{id} calls "
        "the catalog's GET /products/{id} through common_libs.http_client.create_http_client "
        "(httpx API, aiohttp transport) and returns the parsed JSON; GET /local/products/{id} "
        "returns the same dict from memory; the hop includes the catalog's own work for the "
        f"answer; hop {figures['subject_rps']:.0f} req/s (p50 {figures['subject_p50_ms']:.2f} "
        f"ms, {figures['subject_cpu_us']:.0f} µs of the hop app's CPU per request), local "
        f"{figures['reference_rps']:.0f} req/s (p50 {figures['reference_p50_ms']:.2f} ms, "
        f"{figures['reference_cpu_us']:.0f} µs)"
    )
    row.runs = [pair.as_json() for pair in pairs]
    return [row]
