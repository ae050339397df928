"""Measure the service as one real uvicorn process: POST /orders (the saga) and GET /orders/{id}.

    .venv/bin/python -m bench.bench_orders [--seconds 10] [--concurrency 16]

Starts a throwaway PostgreSQL and NATS server, migrates the database, serves the user-service and
catalog stubs from this process (threads), runs the service with uvicorn (one worker, JSON logs at
WARNING; its relay publishes each order's event), then drives ``POST /orders`` from an asyncio
client (each request a new Idempotency-Key: claim, reserve and commit in one catalog call,
confirm with its event) and ``GET /orders/{id}`` with wrk when it is installed (else the same
client).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from alembic import command
from common_libs.http_client import create_http_client
from common_libs.testing import (
    ServerProcess,
    TestTokenIssuer,
    UvicornThread,
    create_database,
    free_port,
    start_nats,
    start_postgres,
)

from tests.integration.conftest import CLIENT_ID, CLIENT_SECRET, SERVICE_ROOT, alembic_config
from tests.support.catalog_stub import CatalogStub
from tests.support.orders import order_body
from tests.support.users_stub import UsersStub


async def _drive(
    call: Callable[[httpx.AsyncClient], Awaitable[int]],
    *,
    base: str,
    seconds: float,
    concurrency: int,
) -> tuple[int, list[float], int]:
    """Run ``call`` from ``concurrency`` workers for ``seconds``; count, latencies, failures."""
    latencies: list[float] = []
    failures = 0
    client = create_http_client(base_url=base, timeout=10.0, max_connections=concurrency)
    stop_at = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal failures
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            status = await call(client)
            latencies.append(time.perf_counter() - started)
            failures += status >= 400

    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        await client.aclose()
    return len(latencies), latencies, failures


def _report(name: str, count: int, latencies: list[float], failures: int, seconds: float) -> None:
    quantiles = statistics.quantiles(latencies, n=100)
    print(
        f"{name:<22} {count / seconds:8.0f} req/s   p50 {quantiles[49] * 1000:6.1f} ms   "
        f"p99 {quantiles[98] * 1000:6.1f} ms   errors {failures}"
    )


def _wrk(url: str, headers: dict[str, str], seconds: float, concurrency: int) -> str | None:
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    argv = [wrk, f"-t{min(2, concurrency)}", f"-c{concurrency}", f"-d{int(seconds)}s", "--latency"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    return subprocess.run(  # noqa: S603 - argv is built here from fixed parts
        [*argv, url], capture_output=True, text=True, check=True
    ).stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    issuer = TestTokenIssuer()
    users = UsersStub(issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, expires_in=3600)
    catalog = CatalogStub(issuer)
    product = catalog.add_product(price="4.99", stock=10_000_000)
    customer = issuer.headers(subject=str(uuid.uuid4()), ttl_seconds=3600)

    with (
        start_postgres() as postgres,
        start_nats() as nats_server,
        UvicornThread(users.app) as users_server,
        UvicornThread(catalog.app) as catalog_server,
        tempfile.TemporaryDirectory() as workdir,
    ):
        database_url = create_database(postgres, "orders_bench")
        command.upgrade(alembic_config(database_url), "head")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            "ORDERS_DATABASE_URL": database_url,
            "ORDERS_ENVIRONMENT": "test",
            "ORDERS_LOG_LEVEL": "WARNING",
            "ORDERS_JWKS_URL": users_server.url + "/auth/jwks",
            "ORDERS_USERS_URL": users_server.url,
            "ORDERS_CATALOG_URL": catalog_server.url,
            "ORDERS_SERVICE_CLIENT_SECRET": CLIENT_SECRET,
            "NATS_URL": nats_server.url,
            # One customer places every order: the per-user limit still counts each one (its
            # cost is measured) but never refuses.
            "ORDERS_PLACE_ORDER_LIMIT": "1000000000",
        }
        argv = [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory"]
        argv += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
        with ServerProcess(
            argv,
            env=env,
            cwd=SERVICE_ROOT,
            log_path=Path(workdir) / "service.log",
            ready_url=base + "/health",
        ):
            body = order_body((product, 1))

            async def place(client: httpx.AsyncClient) -> int:
                headers = {**customer, "Idempotency-Key": uuid.uuid4().hex}
                return (await client.post("/orders", json=body, headers=headers)).status_code

            count, latencies, failures = asyncio.run(
                _drive(place, base=base, seconds=args.seconds, concurrency=args.concurrency)
            )
            _report("POST /orders", count, latencies, failures, args.seconds)

            order_id = httpx.post(
                base + "/orders", json=body, headers={**customer, "Idempotency-Key": "read-me"}
            ).json()["id"]
            output = _wrk(f"{base}/orders/{order_id}", customer, args.seconds, args.concurrency)
            if output is not None:
                rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
                p50 = re.search(r"50%\s+(\S+)", output)
                p99 = re.search(r"99%\s+(\S+)", output)
                print(
                    f"{'GET /orders/{id} (wrk)':<22} {float(rate.group(1)) if rate else 0:8.0f}"
                    f" req/s   p50 {p50.group(1) if p50 else '?':>8}   "
                    f"p99 {p99.group(1) if p99 else '?':>8}"
                )
            else:

                async def read(client: httpx.AsyncClient) -> int:
                    return (await client.get(f"/orders/{order_id}", headers=customer)).status_code

                count, latencies, failures = asyncio.run(
                    _drive(read, base=base, seconds=args.seconds, concurrency=args.concurrency)
                )
                _report("GET /orders/{id}", count, latencies, failures, args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
