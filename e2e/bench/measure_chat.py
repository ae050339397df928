"""Item 6: what the fleet adds to the model's time to first token, through the gateway.

A client on a raw socket (no HTTP library in the way) posts a streamed chat turn to
``/api/chat/generate_response`` with its own ``X-Request-ID`` and notes when the first
``data: {"delta"...`` event arrives. The chat service forwards the request id to the LLM, where
the fleet's OpenAI-compatible test server noted when that request came in and when it flushed
its first content chunk (it runs in a process of its own and sends each chunk at once, with
TCP_NODELAY). Added = client's time to first token - server's time to first token: the
gateway, authentication, the conversation, the catalog search for grounding, the prompt and
token budget, the quota, the SDK, and the way back. The turn is then read to its end.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from decimal import Decimal
from urllib.parse import urlsplit

import asyncpg
import fleet as runner
import httpx

from bench.fixtures import Fixtures, new_customer_token
from bench.fleet_access import Target
from bench.report import Row, below, median, p99, say

__all__ = ["measure_chat", "measure_read_model_lag"]

MESSAGE = "Do you have a walnut desk?"
ADDED_TARGET_MS = 3.0  # issue #22
_FIRST_DELTA = b'data: {"delta"'


def _first_token_seconds(gateway: str, token: str, request_id: str) -> float:
    """Post one streamed turn; seconds from sending it to its first delta event."""
    address = urlsplit(gateway)
    host, port = address.hostname or "127.0.0.1", address.port or 80
    body = json.dumps({"message": MESSAGE, "stream": True}).encode()
    head = (
        f"POST /api/chat/generate_response HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Accept: text/event-stream\r\nX-Request-ID: {request_id}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    first: float | None = None
    received = b""
    with socket.create_connection((host, port), timeout=30) as connection:
        started = time.perf_counter()
        connection.sendall(head + body)
        while chunk := connection.recv(65536):
            received += chunk
            if first is None and _FIRST_DELTA in received:
                first = time.perf_counter()
    if not received.startswith(b"HTTP/1.1 200") or first is None or b"event: done" not in received:
        raise RuntimeError(f"the streamed turn failed: {received[:500]!r}")
    return first - started


def measure_chat(target: Target, *, runs: int, requests: int) -> list[Row]:
    """Median over ``runs`` runs of the median added time of ``requests`` sequential turns."""
    measure = "Chat: time to first token added by the fleet"
    if target.llm is None:
        reason = "skipped: a running fleet's LLM is not the benchmark's test server"
        return [Row(6, measure, None, "ms", f"< {ADDED_TARGET_MS:g} ms", "skipped", reason)]
    llm = target.llm
    token = new_customer_token(target)
    nonce = uuid.uuid4().hex[:8]

    def turns(labels: list[str]) -> list[tuple[float, float]]:
        """Post one turn per label, one after the other; then (client, server) ms of each.

        The test server's records are read once, after the turns: reading that growing list
        between turns slowed the next turn by about 2 ms (the benchmark's own work on the same
        two cores, not the fleet's)."""
        request_ids = [f"bench-chat-{nonce}-{label}" for label in labels]
        clients = [_first_token_seconds(target.gateway, token, rid) for rid in request_ids]
        servers = {
            s.request_id: s.first_token_seconds
            for s in llm.streams()
            if s.first_token_seconds is not None
        }
        missing = [rid for rid in request_ids if rid not in servers]
        if missing:
            raise RuntimeError(f"the test LLM saw no streamed completion for {missing[0]}")
        return [
            (client * 1000, servers[rid] * 1000)
            for client, rid in zip(clients, request_ids, strict=True)
        ]

    turns(["warm-up-0", "warm-up-1"])
    run_medians = []
    for run in range(runs):
        measured = turns([f"{run}-{number}" for number in range(requests)])
        added = median(client - server for client, server in measured)
        run_medians.append(
            {
                "added_ms": round(added, 2),
                "client_ttft_ms": round(median(client for client, _ in measured), 2),
                "server_ttft_ms": round(median(server for _, server in measured), 3),
            }
        )
        say(f"6 chat run {run + 1}: {run_medians[-1]}")
    added_ms = median(float(run["added_ms"]) for run in run_medians)
    row = below(6, measure, added_ms, "ms", ADDED_TARGET_MS)
    row.detail = (
        f"{runs} runs of {requests} sequential streamed turns (after 2 warm-up turns), each a "
        f"new conversation asking '{MESSAGE}' (the catalog is searched once for grounding: "
        "both words match products); "
        "per turn: time to the first delta event at a raw-socket client through the gateway "
        "minus the test LLM server's own time from request to first content chunk; median per "
        f"run, median of the runs; client TTFT median "
        f"{median(float(run['client_ttft_ms']) for run in run_medians):.1f} ms, server TTFT "
        f"median {median(float(run['server_ttft_ms']) for run in run_medians):.2f} ms"
    )
    row.runs = list(run_medians)
    return [row]


async def _lag_seconds(target: Target, fixtures: Fixtures, samples: int) -> list[float]:
    """Change the read product's price through the gateway ``samples`` times, one at a time;
    for each, seconds from sending the PATCH until the chat's read model holds the new price."""
    product_id = fixtures.read_product["id"]
    headers = {"Authorization": f"Bearer {fixtures.admin_token}"}
    connection = await asyncpg.connect(target.database_dsn(runner.CHAT.database))
    lags = []
    try:
        price_of = await connection.prepare("SELECT price FROM catalog_products WHERE id = $1")
        async with httpx.AsyncClient(base_url=target.gateway, timeout=30) as client:
            for number in range(samples):
                price = Decimal(f"{500 + number}.25")
                started = time.perf_counter()
                answer = await client.patch(
                    f"/api/products/{product_id}", json={"price": str(price)}, headers=headers
                )
                answer.raise_for_status()
                while await price_of.fetchval(uuid.UUID(product_id)) != price:
                    if time.perf_counter() - started > 30:
                        raise RuntimeError("a price change did not reach the read model in 30 s")
                    await asyncio.sleep(0.0005)  # a poll every half millisecond
                lags.append(time.perf_counter() - started)
    finally:
        await connection.close()
    return lags


def measure_read_model_lag(target: Target, fixtures: Fixtures, *, samples: int) -> list[Row]:
    """Item 6: how long a catalog change takes to reach the chat's grounding (median and p99)."""
    measure = "Chat read model lag: catalog write through the gateway to the chat's grounding"
    lags = [lag * 1000 for lag in asyncio.run(_lag_seconds(target, fixtures, samples))]
    lag_p99 = p99(lags)
    say(f"6 read model lag: median {median(lags):.1f} ms, p99 {lag_p99:.1f} ms over {samples}")
    rows = [
        Row(6, f"{measure} (median)", round(median(lags), 2), "ms", "—", "info"),
        Row(6, f"{measure} (p99)", round(lag_p99, 2), "ms", "—", "info"),
    ]
    for row in rows:
        row.detail = (
            f"{samples} price changes of one product, one at a time, each a PATCH through the "
            "gateway as the admin; per change: from sending it until the chat's read model "
            "(its catalog_products table, which grounding reads) holds the new price, polled "
            "every half millisecond; includes the PATCH itself, the outbox relay, NATS and the "
            "chat's consumer"
        )
    return rows
