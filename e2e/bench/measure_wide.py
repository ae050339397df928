"""Item 10: every service at 64 connections for 45 s, straight to it: its errors and its p99.

One read per service, the one its clients make most: the catalog's ``GET /products/{id}``,
user-service's ``GET /users/me``, the order service's ``GET /orders`` and the chat's
``GET /chat/conversations`` (the last three with the customers' tokens in rotation, each reading
its own). Each customer first places ``PAGE`` orders and has ``PAGE`` conversations, so that both
lists are a full first page whether the items before ran or not (alone, the customers had none,
and each list was an empty page). One wrk run of ``settings.wide_seconds`` at 64 connections
after a 1 s warm-up, the services one after another. Issue #22's target: 0 errors and a p99 under
150 ms, every service. Each run's detail also gives the service's CPU time per request (``/proc``)
and the database connections it opened per 1,000 requests.
"""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import fleet as runner
import httpx

from bench.fixtures import Fixtures
from bench.fleet_access import Target
from bench.measure_orders import order_body
from bench.processes import cpu_seconds, listening_pid
from bench.report import Row, below, none_of, say
from bench.runs import Settings
from bench.wrk import bearer_script, run_wrk

__all__ = ["PAGE", "WIDE_CONNECTIONS", "measure_wide"]

WIDE_CONNECTIONS = 64
P99_TARGET_MS = 150.0
PAGE = 20  # the lists' default page
_QUESTION = json.dumps({"message": "Which desk would suit a small study?"})


def _fill_each_customers_lists(target: Target, fixtures: Fixtures) -> None:
    """``PAGE`` orders and ``PAGE`` conversations (one chat turn each) for each customer,
    straight to the order service and the chat."""
    writes = (
        (f"{target.url(runner.ORDERS)}/orders", order_body(fixtures.order_product["id"])),
        (f"{target.url(runner.CHAT)}/chat/generate_response", _QUESTION),
    )

    def fill(token: str) -> None:
        with httpx.Client(timeout=60) as client:
            for url, body in writes:
                for _ in range(PAGE):
                    headers = {
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "application/json",
                        "Idempotency-Key": f"bench-page-{uuid.uuid4().hex}",
                    }
                    client.post(url, content=body, headers=headers).raise_for_status()

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(fill, fixtures.customer_tokens))


def measure_wide(
    target: Target, fixtures: Fixtures, settings: Settings, workdir: Path, script: Path
) -> list[Row]:
    """A p99 row and an errors row per service."""
    bearer = bearer_script(workdir, tokens=fixtures.customer_tokens)
    _fill_each_customers_lists(target, fixtures)
    reads = (
        (runner.CATALOG, f"/products/{fixtures.read_product['id']}", script),
        (runner.USERS, "/users/me", bearer),
        (runner.ORDERS, "/orders", bearer),
        (runner.CHAT, "/chat/conversations", bearer),
    )
    rows: list[Row] = []
    for service, path, lua in reads:
        url = f"{target.url(service)}{path}"
        pid = listening_pid(target.port(service))
        run_wrk(url, script=lua, seconds=1, connections=WIDE_CONNECTIONS)  # warm-up
        sessions, cpu = target.sessions(service), cpu_seconds(pid) if pid else 0.0
        result = run_wrk(
            url, script=lua, seconds=settings.wide_seconds, connections=WIDE_CONNECTIONS
        )
        # What a request cost the service, and whether its pool kept up: connections opened
        # (and closed) on the way.
        requests = max(result.requests, 1)
        opened = (target.sessions(service) - sessions) * 1000 / requests
        costs = f", {opened:.1f} database connections opened per 1,000 requests"
        if pid:
            cpu_us = (cpu_seconds(pid) - cpu) * 1e6 / requests
            costs = f", {cpu_us:.0f} µs of the service's CPU per request{costs}"
        # Only the token scripts count the answers by status; errors are counted by every one.
        answers = f", answers by status {result.codes}" if result.codes else ""
        say(
            f"10 {service.name}: {result.rps:.0f} req/s, p50 {result.p50_ms:.1f} ms, p99 "
            f"{result.p99_ms:.1f} ms, errors {result.errors}{costs}{answers}"
        )
        how = (
            f"wrk -t1 -c{WIDE_CONNECTIONS}, {settings.wide_seconds:g} s after a 1 s warm-up, "
            f"GET {path} straight to {service.name}; {result.rps:.0f} req/s, p50 "
            f"{result.p50_ms:.1f} ms{costs}{answers}"
        )
        p99 = below(10, f"64 connections: {service.name} p99", result.p99_ms, "ms", P99_TARGET_MS)
        p99.detail = how
        p99.runs = [result.as_json()]
        errors = none_of(10, f"64 connections: {service.name} errors", result.errors)
        errors.detail = "non-2xx answers, socket errors and timeouts" + (
            f"; first: {' / '.join(result.error_samples)[:300]}" if result.error_samples else ""
        )
        rows += [p99, errors]
    return rows
