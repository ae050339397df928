"""Item 5: search and a deep page at 10,000 and at 1,000,000 products.

Two throwaway databases on the fleet's PostgreSQL server, migrated by the catalog's Alembic and
bulk-loaded with COPY, each served by its own catalog process started as the fleet starts the
catalog (same command, same environment, only the database differs). Each round measures the
same request at both sizes back to back; the figure is the median of the per-round ratios of
p50 latency (large / small). Both databases are dropped afterwards.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlencode

import fleet as runner
import httpx
from common_libs.testing import free_port

from bench import catalog_data
from bench.fleet_access import Target
from bench.processes import Process
from bench.report import Row, at_most, say
from bench.runs import Settings, medians, paired_runs

__all__ = ["SEARCH", "measure_scale"]

SEARCH = "walnut desk"


@contextmanager
def _catalog_with(target: Target, count: int, workdir: Path) -> Iterator[tuple[str, str]]:
    """A catalog process over a new database of ``count`` products: its URL and a deep cursor."""
    database = f"bench_catalog_{count}"
    server = target.database_dsn("postgres")
    dsn = target.database_dsn(database)
    asyncio.run(catalog_data.create_database(server, database))
    try:
        env = target.service_env(runner.CATALOG)
        env["CATALOG_DATABASE_URL"] = dsn.replace("postgresql://", "postgresql+asyncpg://")
        catalog_data.migrate(runner.CATALOG.workdir, env)
        started = time.perf_counter()
        asyncio.run(catalog_data.load_products(dsn, count))
        say(f"5 loaded {count:,} products in {time.perf_counter() - started:.1f} s")
        cursor = asyncio.run(catalog_data.page_cursor(dsn, after_rows=count // 2))
        port = free_port()
        process = Process(
            name=f"catalog-{count}",
            argv=target.service_command(runner.CATALOG, port),
            cwd=runner.CATALOG.workdir,
            env=env,
            log_path=workdir / f"catalog-{count}.log",
            ready_url=f"http://127.0.0.1:{port}/ready",
        )
        process.start()
        try:
            yield f"http://127.0.0.1:{port}", cursor
        finally:
            process.stop()
    finally:
        asyncio.run(catalog_data.drop_database(server, database))


def _check_page(url: str) -> None:
    """The request answers a full page (a cursor the catalog refused would measure a 422)."""
    response = httpx.get(url, timeout=30)
    if response.status_code != 200 or len(response.json()["items"]) != 20:
        raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:300]}")


def measure_scale(target: Target, settings: Settings, workdir: Path, script: Path) -> list[Row]:
    """Search and deep-page latency at the large size relative to the small one."""
    small, large = settings.scale_small, settings.scale_large
    if not large:
        reason = "skipped: BENCH_SCALE_1M=0"
        return [
            Row(
                5, "Catalog scale: search p50 at 1M / 10k", None, "x", "<= 1.5 x", "skipped", reason
            ),
            Row(
                5,
                "Catalog scale: deep page p50 at 1M / 10k",
                None,
                "x",
                "<= 1.5 x",
                "skipped",
                reason,
            ),
        ]
    rows = []
    with ExitStack() as stack:
        small_url, small_cursor = stack.enter_context(_catalog_with(target, small, workdir))
        large_url, large_cursor = stack.enter_context(_catalog_with(target, large, workdir))
        requests = {
            "search": (
                f"{large_url}/products?{urlencode({'q': SEARCH})}",
                f"{small_url}/products?{urlencode({'q': SEARCH})}",
            ),
            "deep page": (
                f"{large_url}/products?cursor={large_cursor}",
                f"{small_url}/products?cursor={small_cursor}",
            ),
        }
        for name, (large_request, small_request) in requests.items():
            _check_page(large_request)
            _check_page(small_request)
            pairs = paired_runs(
                f"5 {name} {large:,}/{small:,}",
                large_request,
                small_request,
                script=script,
                settings=settings,
                connections=settings.scale_connections,
            )
            figures = medians(pairs)
            what = (
                "GET /products?q=walnut desk"
                if name == "search"
                else ("GET /products?cursor=<the page after the newest half>")
            )
            measure = f"Catalog scale: {name} p50 at {large:,} / {small:,}"
            row = at_most(5, measure, figures["p50_ratio"], "x", 1.5)
            row.detail = (
                f"{what} (20 products a page), wrk -t1 -c{settings.scale_connections}, "
                f"{settings.rounds} rounds of {settings.seconds:g} s; p50 "
                f"{figures['subject_p50_ms']:.2f} ms at {large:,} and "
                f"{figures['reference_p50_ms']:.2f} ms at {small:,} (p99 "
                f"{figures['subject_p99_ms']:.1f} / {figures['reference_p99_ms']:.1f} ms)"
            )
            if name == "deep page":
                row.target += " (the search's target, applied here too)"
            row.runs = [pair.as_json() for pair in pairs]
            rows.append(row)
    return rows
