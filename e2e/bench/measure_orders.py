"""Item 4: orders placed through the gateway at a fixed concurrency, by the real services.

wrk posts ``POST /api/orders`` (one item of a product with a billion in stock) with a token
from a list of logged-in customers per request and a unique Idempotency-Key per request, so
that every request is a new order: claim the key, the pending order, the catalog's
reservation and commit (the order service's service token from user-service, cached), the
confirmation. Any answer but a 2xx, and any socket error or timeout, is an error.

With the orders, the events flow: each reservation changes a product's stock, which the catalog
publishes and the chat's read model consumes. How long after its commit each event was handled
comes from the consumers' own histogram (``bench/event_delays.py``) over the rounds.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable
from pathlib import Path

import fleet as runner
import httpx

from bench.event_delays import (
    combined,
    handled_delays,
    published_by_outcome,
    quantile,
    scrape,
    since,
)
from bench.fixtures import Fixtures
from bench.fleet_access import Target
from bench.processes import cpu_seconds, listening_pid
from bench.read_model_staleness import SETTLE_SECONDS, StalenessSampler, staleness_ms
from bench.report import Row, at_least, below, measured, median, none_of, p99, say
from bench.runs import Settings
from bench.wrk import WrkResult, order_script, run_wrk

__all__ = ["measure_orders", "order_body"]

_IN_THE_LOOP = (runner.USERS, runner.CATALOG, runner.ORDERS)
STALENESS = "Events: the chat's read model behind the catalog under the order load"


def order_body(product_id: str) -> str:
    """The body of one order: one item of ``product_id``, an address."""
    address = {
        "name": "Grace Hopper",
        "line1": "1 Navy Yard Road",
        "city": "Arlington",
        "postal_code": "22202",
        "country": "US",
    }
    items = [{"product_id": product_id, "quantity": 1}]
    return json.dumps({"items": items, "shipping_address": address})


def _orders_per_second(result: WrkResult) -> float:
    return (result.requests - result.non_2xx) / result.seconds


def measure_orders(
    target: Target, fixtures: Fixtures, settings: Settings, workdir: Path
) -> list[Row]:
    """Orders per second, p50 and p99, and errors, each over ``settings.rounds`` runs."""
    url = f"{target.gateway}/api/orders"
    body = order_body(fixtures.order_product["id"])
    connections = settings.order_connections

    def run(seconds: float) -> WrkResult:
        script = order_script(workdir, tokens=fixtures.customer_tokens, body=body)
        return run_wrk(url, script=script, seconds=seconds, connections=connections)

    found = {service.name: listening_pid(target.port(service)) for service in _IN_THE_LOOP}
    # The broker the services' relays publish the orders' events to (absent before events).
    found["nats-server"] = listening_pid(target.config.nats_port)
    pids = {name: pid for name, pid in found.items() if pid is not None}

    # One order alone first: the order service fetches its service token on its first order,
    # which belongs to its start-up, not to its steady state.
    first = httpx.post(
        url,
        content=body,
        headers={
            "Authorization": f"Bearer {fixtures.customer_tokens[0]}",
            "Content-Type": "application/json",
            "Idempotency-Key": f"bench-first-{uuid.uuid4().hex}",
        },
        timeout=30,
    )
    if first.status_code != 201:
        raise RuntimeError(f"the first order answered {first.status_code}: {first.text[:300]}")
    warm_up = run(2)
    say(f"4 orders warm-up: {warm_up.requests} requests, answers {warm_up.codes}")
    results = []
    cpu_ms: dict[str, list[float]] = {name: [] for name in pids}
    consumers = [target.url(service) for service in runner.SERVICES]
    metrics_before = scrape(consumers)
    for number in range(settings.rounds):
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        result = run(settings.order_seconds)
        for name, pid in pids.items():
            used = cpu_seconds(pid) - before[name]
            cpu_ms[name].append(used / max(result.requests, 1) * 1000)
        results.append(result)
        say(
            f"4 orders run {number + 1}: {_orders_per_second(result):.0f} orders/s, p50 "
            f"{result.p50_ms:.0f} ms, p99 {result.p99_ms:.0f} ms, answers {result.codes}, "
            f"errors {result.errors}"
        )
    metrics_after = scrape(consumers)
    delays = since(handled_delays(metrics_before), handled_delays(metrics_after))
    outcomes_before = published_by_outcome(metrics_before)
    outcomes = published_by_outcome(metrics_after)
    sent = {key: outcomes[key] - outcomes_before.get(key, 0.0) for key in sorted(outcomes)}
    how = (
        f"wrk -t1 -c{connections}, {settings.rounds} runs of {settings.order_seconds:g} s "
        "(after one order alone and a 2 s warm-up), POST /api/orders through the gateway, one "
        f"item each, {len(fixtures.customer_tokens)} customers' tokens in rotation, a new "
        "Idempotency-Key per request; orders/s counts 2xx answers; p50/p99 from wrk's latency "
        "histogram of all answers; figures are medians of the runs, errors their sum"
    )
    rate = at_least(
        4, "Orders through the gateway", median(map(_orders_per_second, results)), "orders/s", 250
    )
    cpu = ", ".join(f"{name} {median(values):.1f} ms" for name, values in cpu_ms.items())
    rate.detail = f"{how}; CPU time per order (median of the runs): {cpu}"
    rate.runs = [result.as_json() for result in results]
    p50 = Row(4, "Orders: p50 latency", median(r.p50_ms for r in results), "ms", "none set", "info")
    p99 = below(4, "Orders: p99 latency", median(r.p99_ms for r in results), "ms", 150)
    errors = sum(result.errors for result in results)
    failed = none_of(4, "Orders: errors", errors)
    answers: dict[int, int] = {}
    for result in results:
        for code, count in result.codes.items():
            answers[code] = answers.get(code, 0) + count
    samples = sorted({sample for result in results for sample in result.error_samples})
    failed.detail = f"answers by status over the runs: {dict(sorted(answers.items()))}"
    if samples:
        failed.detail += f"; first failed answers: {' / '.join(samples)[:600]}"
    orders = sum(result.requests for result in results)
    # A failure here leaves the figures above standing (an error row of its own).
    staleness = measured(
        4, STALENESS, lambda: _staleness_rows(target, fixtures, run, settings.order_seconds)
    )
    return [rate, p50, p99, failed, *_event_rows(delays, sent, orders), *staleness]


def _staleness_rows(
    target: Target, fixtures: Fixtures, run: Callable[[float], WrkResult], seconds: float
) -> list[Row]:
    """One more order run, the chat's read model of the ordered product sampled against the
    catalog meanwhile (``bench/read_model_staleness.py``): how far behind it was, p50 and p99.

    A run of its own: the sampler's queries are load on the same two cores, so the runs above
    are measured without it."""
    sampler = StalenessSampler(
        catalog_dsn=target.database_dsn(runner.CATALOG.database),
        chat_dsn=target.database_dsn(runner.CHAT.database),
        product_id=fixtures.order_product["id"],
    ).start()
    try:
        result = run(seconds)
    finally:
        samples = sampler.finish()
    stale, behind = staleness_ms(samples)
    if len(stale) < 2:
        raise RuntimeError(
            "the staleness sampler saw too few versions of the product reach the chat"
        )
    stale_p50, stale_p99 = median(stale), p99(stale)
    interval = (samples[-1].catalog_at - samples[0].catalog_at) / max(len(samples) - 1, 1)
    rate = _orders_per_second(result)
    say(
        f"4 read model staleness: {len(stale)} versions, p50 {stale_p50:.1f} ms, "
        f"p99 {stale_p99:.1f} ms, "
        f"max {max(stale):.1f} ms, a sample every {interval * 1000:.1f} ms, "
        f"{rate:.0f} orders/s meanwhile"
    )
    detail = (
        f"one more order run of {seconds:g} s ({rate:.0f} orders/s, "
        f"answers {result.codes}) with a sampler reading the product's latest event version at "
        "the catalog (event_versions) and then the version the chat's read model has applied "
        "(consumed_versions) on connections of its own, a sample every "
        f"{interval * 1000:.1f} ms until the read model caught up; per version, from the first "
        "sample that saw it at the catalog to the first that saw the read model at it or later "
        f"(to about one sampling interval either way), coalesced updates included; {len(stale)} "
        f"versions, the slowest {max(stale):.1f} ms"
        + (
            f", {behind} not reached by the read model within {SETTLE_SECONDS:g} s after the run"
            if behind
            else ""
        )
    )
    rows = [
        Row(4, f"{STALENESS} (median)", round(stale_p50, 2), "ms", "—", "info"),
        Row(4, f"{STALENESS} (p99)", round(stale_p99, 2), "ms", "—", "info"),
    ]
    for row in rows:
        row.detail = detail
    return rows


def _event_rows(
    delays: dict[str, dict[float, float]], sent: dict[str, float], orders: int
) -> list[Row]:
    """The events' commit-to-handled p50 and p99 over the rounds, every consumer together."""
    every = combined(delays.values())
    counts = ", ".join(f"{name} {buckets[math.inf]:.0f}" for name, buckets in delays.items())
    outcomes = ", ".join(f"{name} {count:.0f}" for name, count in sent.items() if count)
    detail = (
        "from an event's commit (occurred_at) to its handler's commit, every consumer of the "
        "fleet over the order runs, read from their events_handled_delay_seconds buckets "
        f"(linear within a bucket); events handled: {counts or 'none'}; the producers' events "
        f"by outcome over {orders} answers: {outcomes or 'none'} (a coalesced event is not "
        "sent: a later one of its product carried the newer state, and its delay is not in "
        "these figures)"
    )
    rows = []
    for q, bound in ((0.5, 20), (0.99, 100)):
        row = below(
            4, f"Events: commit to handled, p{q * 100:g}", quantile(q, every) * 1000, "ms", bound
        )
        row.detail = detail
        rows.append(row)
    return rows
