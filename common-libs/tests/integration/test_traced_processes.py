"""Tracing across real service processes: one trace from the caller's span to the peer service,
spans sent when a process stops, and the caller's trace passed on by a process that exports
nothing."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import httpx
import pytest

from common_libs.testing import PostgresServer, UvicornServer, create_database
from common_libs.testing.otlp import OtlpReceiver, ReceivedSpan

SUPPORT = Path(__file__).parent.parent / "support"
NO_EXPORT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ""}


def traced_service(tmp_path: Path, name: str, env: dict[str, str]) -> UvicornServer:
    return UvicornServer(
        "traced_service:create_app",
        app_dir=SUPPORT,
        factory=True,
        log_path=tmp_path / f"{name}.log",
        env={**NO_EXPORT, **env},
    )


def new_caller() -> tuple[str, str, str]:
    """A caller's trace id, span id and ``traceparent``."""
    trace_id, span_id = f"{random.getrandbits(128):032x}", f"{random.getrandbits(64):016x}"
    return trace_id, span_id, f"00-{trace_id}-{span_id}-01"


def log_line(server: UvicornServer, message: str) -> dict[str, Any]:
    # Only lines ended by their newline: the server may be writing the next one (its access line).
    written, _, _ = server.output().rpartition("\n")
    lines = [json.loads(line) for line in written.splitlines() if line.startswith("{")]
    [line] = [line for line in lines if line["message"] == message]
    return line


@pytest.fixture(scope="module")
def database_url(postgres_server: PostgresServer) -> str:
    return create_database(postgres_server, "cl_traced_service")


def test_one_trace_runs_from_the_caller_through_two_services_and_reaches_the_collector(
    tmp_path: Path, otlp: OtlpReceiver, database_url: str
) -> None:
    # Spans would wait a minute for their batch: only the flush at exit can send them in time.
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "60000"}
    trace_id, caller_id, traceparent = new_caller()

    with traced_service(tmp_path, "stock", {**env, "OTEL_SERVICE_NAME": "stock-service"}) as stock:
        orders_env = {**env, "PEER_URL": stock.url, "DATABASE_URL": database_url}
        with traced_service(tmp_path, "orders", orders_env) as orders:
            answer = httpx.get(f"{orders.url}/orders/o-1", headers={"traceparent": traceparent})
            order_line = log_line(orders, "handling order o-1")
    # Both stopped by SIGTERM, and a stopped process has sent everything it had.

    spans = otlp.matching(lambda span: span.trace_id == trace_id)
    by_name: dict[tuple[str | None, str], ReceivedSpan] = {
        (span.service, span.name): span for span in spans
    }
    assert sorted(by_name) == [
        ("stock-service", "GET /stock/{sku}"),
        ("traced-service", "GET"),
        ("traced-service", "GET /orders/{order_id}"),
        ("traced-service", "SELECT cl_traced_service"),
    ]
    server = by_name["traced-service", "GET /orders/{order_id}"]
    statement = by_name["traced-service", "SELECT cl_traced_service"]
    call = by_name["traced-service", "GET"]
    peer = by_name["stock-service", "GET /stock/{sku}"]
    assert (server.kind, server.parent_span_id) == ("SERVER", caller_id)
    assert server.resource["service.version"] == "3.2.1"
    assert (statement.kind, statement.parent_span_id) == ("CLIENT", server.span_id)
    assert (call.kind, call.parent_span_id) == ("CLIENT", server.span_id)
    assert (peer.kind, peer.parent_span_id) == ("SERVER", call.span_id)
    assert answer.json()["headers"]["traceparent"].split("-")[1:3] == [trace_id, call.span_id]
    assert (order_line["trace_id"], order_line["span_id"]) == (trace_id, server.span_id)
    assert order_line["request_id"]


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({}, id="no-endpoint"),
        pytest.param({"OTEL_SDK_DISABLED": "true"}, id="sdk-disabled"),
    ],
)
def test_a_service_that_exports_nothing_passes_the_callers_trace_on(
    tmp_path: Path, otlp: OtlpReceiver, env: dict[str, str]
) -> None:
    env = {**env, "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint} if env else env
    trace_id, caller_id, traceparent = new_caller()
    headers = {"traceparent": traceparent, "tracestate": "shop=eu-1"}

    stock = traced_service(tmp_path, "stock", env)
    with stock, traced_service(tmp_path, "orders", {**env, "PEER_URL": stock.url}) as orders:
        answer = httpx.get(f"{orders.url}/orders/o-2", headers=headers)
        order_line = log_line(orders, "handling order o-2")

    peer_saw = answer.json()["headers"]
    assert (peer_saw["traceparent"], peer_saw["tracestate"]) == (traceparent, "shop=eu-1")
    assert (order_line["trace_id"], order_line["span_id"]) == (trace_id, caller_id)
    # Stopped, the processes would have sent any span they had.
    assert otlp.matching(lambda span: span.trace_id == trace_id) == []


def test_without_a_caller_a_service_that_exports_nothing_logs_no_trace(tmp_path: Path) -> None:
    with traced_service(tmp_path, "orders", {}) as orders:
        answer = httpx.get(f"{orders.url}/orders/o-3")
        order_line = log_line(orders, "handling order o-3")

    assert answer.json() == {}
    assert (order_line["trace_id"], order_line["span_id"]) == (None, None)
    assert order_line["request_id"]
