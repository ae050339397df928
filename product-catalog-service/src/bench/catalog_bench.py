"""Benchmark the hot read paths against 100,000 products.

    python -m bench.catalog_bench [--products 100000] [--duration 10] [--connections 16]

Starts a throwaway PostgreSQL (or uses ``BENCH_DATABASE_URL``'s server), migrates a fresh
database, bulk-loads the products with COPY, starts the service as a uvicorn process, and drives
three requests with ``wrk`` (bounded: fixed connections and duration): one product by id, a
full-text search, and a deep page (the page after the 50,000 newest products). Prints
requests/s and p50/p99 latency per request.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

import asyncpg
from alembic import command
from alembic.config import Config
from common_libs.pagination import encode_cursor
from common_libs.testing import (
    PostgresServer,
    ServerProcess,
    create_database,
    free_port,
    start_postgres,
)

SERVICE_ROOT = Path(__file__).resolve().parents[1]
SEARCH_QUERY = "walnut desk"
ADJECTIVES = (
    "compact", "classic", "rugged", "silent", "smart", "vintage", "modern", "foldable",
    "portable", "premium", "wireless", "ergonomic", "waterproof", "heated", "minimal",
)  # fmt: skip
MATERIALS = (
    "oak", "walnut", "steel", "bamboo", "leather", "linen", "ceramic", "glass", "wool",
    "carbon", "cotton", "granite", "copper", "maple", "canvas",
)  # fmt: skip
NOUNS = (
    "desk", "chair", "lamp", "kettle", "backpack", "tent", "jacket", "speaker", "bottle",
    "shelf", "blanket", "mug", "headphones", "boots", "table", "sofa", "clock", "mirror",
    "stool", "rug",
)  # fmt: skip
CATEGORIES = ("home", "office", "outdoor", "kitchen", "audio", "apparel", "decor", "travel")


@dataclass(frozen=True)
class Result:
    """What wrk measured for one request, and the service's CPU time per request."""

    name: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_request: float


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def product_records(count: int) -> Iterator[tuple[object, ...]]:
    """Deterministic products: three-word names, a sentence of description, 8 categories."""
    rng = random.Random(20261126)  # noqa: S311 - sample data, not secrets
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(count):
        name = f"{rng.choice(ADJECTIVES)} {rng.choice(MATERIALS)} {rng.choice(NOUNS)}"
        description = (
            f"A {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} made of {rng.choice(MATERIALS)}, "
            f"pairs well with a {rng.choice(MATERIALS)} {rng.choice(NOUNS)}."
        )
        yield (
            f"BENCH-{i:07d}",
            name.capitalize(),
            description,
            rng.choice(CATEGORIES),
            Decimal(rng.randint(100, 100_000)) / 100,
            "USD",
            rng.randint(0, 500),
            start + timedelta(seconds=i),
        )


async def load_products(url: str, count: int) -> str:
    """COPY ``count`` products in, analyse, and return the cursor of the page after the middle."""
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await connection.copy_records_to_table(
            "products",
            records=product_records(count),
            columns=[
                "sku",
                "name",
                "description",
                "category",
                "price",
                "currency",
                "stock",
                "created_at",
            ],
        )
        await connection.execute("VACUUM ANALYZE products")
        row = await connection.fetchrow(
            "SELECT created_at, id FROM products ORDER BY created_at DESC, id DESC "
            "OFFSET $1 LIMIT 1",
            count // 2 - 1,
        )
    finally:
        await connection.close()
    return encode_cursor({"c": row["created_at"].isoformat(), "i": str(row["id"])})


def _find(pattern: str, text: str) -> str:
    """The first group of ``pattern`` in wrk's output."""
    match = re.search(pattern, text, re.MULTILINE)
    if match is None:
        raise ValueError(f"{pattern!r} not found in wrk's output:\n{text}")
    return match.group(1)


def _milliseconds(value: str) -> float:
    number, unit = _find(r"^([\d.]+)(us|ms|s)$", value), _find(r"(us|ms|s)$", value)
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(name: str, url: str, *, duration: int, connections: int, service_pid: int) -> Result:
    """Drive ``url`` with wrk (one thread) and read requests/s and latency percentiles."""
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    argv = [wrk, "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url]
    cpu_before = cpu_seconds(service_pid)
    output = subprocess.run(argv, capture_output=True, text=True, check=True).stdout  # noqa: S603
    cpu = cpu_seconds(service_pid) - cpu_before
    if "Non-2xx" in output:
        sys.exit(f"{name}: some answers were not 2xx:\n{output}")
    total = int(_find(r"(\d+) requests in", output))
    rps = float(_find(r"Requests/sec:\s+([\d.]+)", output))
    p50 = _find(r"^\s+50%\s+(\S+)", output)
    p99 = _find(r"^\s+99%\s+(\S+)", output)
    return Result(name, rps, _milliseconds(p50), _milliseconds(p99), cpu / total * 1e6)


@contextmanager
def postgres() -> Iterator[PostgresServer]:
    """``BENCH_DATABASE_URL``'s server, or a throwaway local one."""
    url = os.environ.get("BENCH_DATABASE_URL")
    if url:
        yield PostgresServer.from_url(url)
        return
    with start_postgres() as server:
        yield server


def main() -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=10, help="seconds per request")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()

    with ExitStack() as stack:
        server = stack.enter_context(postgres())
        url = create_database(server, "catalog_bench")
        config = Config(str(SERVICE_ROOT / "alembic.ini"))
        config.attributes["database_url"] = url
        config.attributes["configure_logger"] = False
        command.upgrade(config, "head")
        started = time.perf_counter()
        deep_cursor = asyncio.run(load_products(url, args.products))
        print(f"loaded {args.products} products in {time.perf_counter() - started:.1f} s")

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="catalog-bench-")))
        argv = [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory"]
        argv += ["--host", "127.0.0.1", "--port", str(port)]
        # A pool larger than wrk's connections: overflow connections are closed on return, and
        # reopening them would be measured instead of the service.
        env = {
            "CATALOG_DATABASE_URL": url,
            "CATALOG_LOG_LEVEL": "WARNING",
            "CATALOG_DATABASE_POOL_SIZE": str(args.connections + 4),
        }
        service = stack.enter_context(
            ServerProcess(
                argv,
                env=env,
                cwd=SERVICE_ROOT,
                log_path=workdir / "service.log",
                ready_url=base + "/ready",
            )
        )
        product_id = asyncio.run(_any_product_id(url))
        requests = [
            ("GET /products/{id}", f"{base}/products/{product_id}"),
            (
                f"GET /products?q={SEARCH_QUERY}",
                f"{base}/products?{urlencode({'q': SEARCH_QUERY})}",
            ),
            ("GET /products?cursor=<page after 50,000>", f"{base}/products?cursor={deep_cursor}"),
        ]
        assert service.process is not None
        pid = service.process.pid
        # Warm up: the pool's connections, prepared statements, the first JSON key caches.
        run_wrk(
            "warm-up", requests[0][1], duration=2, connections=args.connections, service_pid=pid
        )
        results = [
            run_wrk(
                name, target, duration=args.duration, connections=args.connections, service_pid=pid
            )
            for name, target in requests
        ]

    print(
        f"\n{args.products} products, wrk -t1 -c{args.connections} -d{args.duration}s, "
        f"one uvicorn worker, {os.cpu_count()} CPUs shared by wrk, uvicorn and PostgreSQL\n"
    )
    header = ("request", "req/s", "p50 ms", "p99 ms", "service CPU µs/req")
    print(f"| {header[0]:<42} | {header[1]:>6} | {header[2]:>6} | {header[3]:>6} | {header[4]} |")
    print(f"|{'-' * 44}|{'-' * 7}:|{'-' * 7}:|{'-' * 7}:|{'-' * (len(header[4]) + 1)}:|")
    for result in results:
        print(
            f"| {result.name:<42} | {result.requests_per_second:>6.0f} | "
            f"{result.p50_ms:>6.1f} | {result.p99_ms:>6.1f} | "
            f"{result.cpu_us_per_request:>{len(header[4])}.0f} |"
        )
    return 0


async def _any_product_id(url: str) -> str:
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        return str(await connection.fetchval("SELECT id FROM products ORDER BY sku LIMIT 1"))
    finally:
        await connection.close()


if __name__ == "__main__":
    sys.exit(main())
