"""Spans of a traced process: server spans, the peer client's spans and their traceparent,
statement spans on a real PostgreSQL, and the trace in the log lines."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from httpx_aiohttp import AiohttpTransport
from opentelemetry import context, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState
from sqlalchemy import exc, text

from common_libs.db import create_engine, ping_database
from common_libs.http_client import create_http_client
from common_libs.service_app import create_service_app
from common_libs.testing import PostgresServer, create_database, free_port
from common_libs.testing.otlp import OtlpReceiver, ReceivedSpan

pytestmark = pytest.mark.usefixtures("tracing", "restore_logging")

Sent = Callable[..., list[ReceivedSpan]]

tracer = trace.get_tracer("common-libs-tests")


@dataclass(frozen=True)
class Caller:
    """A caller's span, sent as ``traceparent``."""

    trace_id: str
    span_id: str

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-01"


def new_caller() -> Caller:
    return Caller(f"{random.getrandbits(128):032x}", f"{random.getrandbits(64):016x}")


def ids(span: trace.Span) -> tuple[str, str]:
    span_context = span.get_span_context()
    return format(span_context.trace_id, "032x"), format(span_context.span_id, "016x")


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@dataclass(frozen=True)
class Settings:
    log_level: str = "INFO"
    log_json: bool = True


@asynccontextmanager
async def no_resources(app: FastAPI) -> AsyncIterator[None]:
    yield


def build() -> FastAPI:
    app = create_service_app(
        name="orders-service",
        version="1.0.0",
        summary="Orders.",
        lifespan=no_resources,
        settings=Settings(),
        ready_checks={},
    )

    @app.get("/orders/{order_id}")
    async def get_order(order_id: str) -> dict[str, str]:
        logging.getLogger("orders.routes").info("reading order %s", order_id)
        return {"id": order_id}

    @app.get("/broken")
    async def broken() -> None:
        raise RuntimeError("the ledger is gone")

    return app


async def get(path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """A request to a fresh app, built inside the test so that its log lines reach capsys."""
    transport = httpx.ASGITransport(app=build())
    async with httpx.AsyncClient(transport=transport, base_url="http://orders") as client:
        return await client.get(path, headers=headers)


@pytest.fixture
def sent(tracing: TracerProvider, otlp: OtlpReceiver) -> Sent:
    """The spans of a trace (of one kind), once every span that ended has been sent."""

    def spans(trace_id: str, kind: str | None = None) -> list[ReceivedSpan]:
        assert tracing.force_flush()
        return otlp.matching(lambda span: span.trace_id == trace_id and kind in (None, span.kind))

    return spans


async def test_a_request_is_a_server_span_named_by_its_route_under_the_callers_span(
    sent: Sent,
) -> None:
    caller = new_caller()

    await get("/orders/o-17", headers={"traceparent": caller.traceparent})

    [span] = sent(caller.trace_id)
    assert (span.name, span.kind, span.service) == (
        "GET /orders/{order_id}",
        "SERVER",
        "common-libs-tests",
    )
    assert span.parent_span_id == caller.span_id
    assert span.attributes == {
        "http.request.method": "GET",
        "url.scheme": "http",
        "url.path": "/orders/o-17",
        "http.route": "/orders/{order_id}",
        "http.response.status_code": 200,
    }
    assert span.status == "UNSET"


async def test_log_lines_inside_a_request_carry_its_trace_beside_the_request_id(
    sent: Sent, capsys: pytest.CaptureFixture[str]
) -> None:
    caller = new_caller()

    await get("/orders/o-18", headers={"traceparent": caller.traceparent, "X-Request-ID": "req-18"})

    [span] = sent(caller.trace_id)
    [line] = [
        line for line in json_lines(capsys.readouterr().err) if line["name"] == "orders.routes"
    ]
    assert (line["trace_id"], line["span_id"]) == (span.trace_id, span.span_id)
    assert line["request_id"] == "req-18"


async def test_a_request_without_a_caller_starts_a_trace(
    sent: Sent, capsys: pytest.CaptureFixture[str]
) -> None:
    await get("/orders/o-19")

    [line] = [
        line for line in json_lines(capsys.readouterr().err) if line["name"] == "orders.routes"
    ]
    [span] = sent(line["trace_id"])
    assert span.parent_span_id is None
    assert span.span_id == line["span_id"]


async def test_probes_and_scrapes_are_not_traced(
    sent: Sent,
) -> None:
    caller = new_caller()
    headers = {"traceparent": caller.traceparent}

    for path in ("/health", "/ready", "/metrics"):
        assert (await get(path, headers=headers)).status_code == 200
    await get("/orders/o-20", headers=headers)

    assert [span.name for span in sent(caller.trace_id)] == ["GET /orders/{order_id}"]


async def test_a_request_no_route_matched_is_named_by_its_method(
    sent: Sent,
) -> None:
    caller = new_caller()

    await get("/no/such/thing", headers={"traceparent": caller.traceparent})

    [span] = sent(caller.trace_id)
    assert span.name == "GET"
    assert "http.route" not in span.attributes
    assert (span.attributes["http.response.status_code"], span.status) == (404, "UNSET")


async def test_an_unsampled_callers_request_records_nothing_but_logs_its_trace(
    sent: Sent, capsys: pytest.CaptureFixture[str]
) -> None:
    caller = new_caller()

    await get("/orders/o-21", {"traceparent": caller.traceparent[:-2] + "00"})

    [line] = [
        line for line in json_lines(capsys.readouterr().err) if line["name"] == "orders.routes"
    ]
    assert line["trace_id"] == caller.trace_id
    assert len(line["span_id"]) == 16  # the request's own span, recorded or not
    assert sent(caller.trace_id) == []


async def test_an_unhandled_error_marks_the_span_and_its_log_line_carries_the_trace(
    sent: Sent, capsys: pytest.CaptureFixture[str]
) -> None:
    caller = new_caller()

    with pytest.raises(RuntimeError):
        await get("/broken", headers={"traceparent": caller.traceparent})

    [span] = sent(caller.trace_id)
    assert (span.name, span.status) == ("GET /broken", "ERROR")
    assert span.attributes["http.response.status_code"] == 500
    assert span.attributes["error.type"] == "RuntimeError"
    assert "the ledger is gone" not in repr(span)  # the message goes to the log only
    [line] = [line for line in json_lines(capsys.readouterr().err) if "exc_info" in line]
    assert (line["message"], line["trace_id"], line["span_id"]) == (
        "unhandled error",
        span.trace_id,
        span.span_id,
    )


@pytest.fixture
async def peer(upstream: str) -> AsyncIterator[httpx.AsyncClient]:
    async with create_http_client(base_url=upstream) as client:
        yield client


async def test_a_call_is_a_client_span_that_the_peer_continues(
    peer: httpx.AsyncClient, upstream: str, sent: Sent
) -> None:
    with tracer.start_as_current_span("handler") as handler:
        answer = await peer.get("/echo", params={"email": "ada@example.org"})

    _, trace_id, parent_id, flags = answer.json()["headers"]["traceparent"].split("-")
    [client_span] = sent(trace_id, "CLIENT")
    assert trace_id == ids(handler)[0]
    assert int(flags, 16) & 1  # sampled
    assert parent_id == client_span.span_id
    assert client_span.parent_span_id == ids(handler)[1]
    assert client_span.name == "GET"
    assert client_span.attributes == {
        "http.request.method": "GET",
        "url.full": f"{upstream}/echo",  # the query string may hold personal data
        "server.address": "127.0.0.1",
        "server.port": urlsplit(upstream).port,
        "http.response.status_code": 200,
    }


async def test_the_callers_tracestate_goes_on_with_the_call(peer: httpx.AsyncClient) -> None:
    remote = SpanContext(
        trace_id=random.getrandbits(128),
        span_id=random.getrandbits(64),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("shop", "eu-1")]),
    )
    token = context.attach(trace.set_span_in_context(NonRecordingSpan(remote)))
    try:
        answer = await peer.get("/echo")
    finally:
        context.detach(token)

    headers = answer.json()["headers"]
    assert headers["tracestate"] == "shop=eu-1"
    assert headers["traceparent"].split("-")[1] == format(remote.trace_id, "032x")


async def test_a_failed_call_is_an_error_span(peer: httpx.AsyncClient, sent: Sent) -> None:
    with tracer.start_as_current_span("handler") as handler:
        await peer.get("/no-such-path")
        async with create_http_client(base_url=f"http://127.0.0.1:{free_port()}") as nowhere:
            with pytest.raises(httpx.TransportError) as refused:
                await nowhere.post("/orders")

    trace_id = ids(handler)[0]
    spans = sent(trace_id, "CLIENT")
    assert [(span.name, span.status, span.attributes["error.type"]) for span in spans] == [
        ("GET", "ERROR", "404"),
        ("POST", "ERROR", type(refused.value).__qualname__),
    ]
    assert "http.response.status_code" not in spans[1].attributes


async def test_other_clients_send_no_trace_context(upstream: str) -> None:
    # Neither httpx nor aiohttp is instrumented as a whole: only create_http_client's clients
    # are traced (the OpenAI SDK's client, say, is left to its own instrumentation).
    with tracer.start_as_current_span("handler"):
        async with httpx.AsyncClient(base_url=upstream) as plain:
            plain_headers = (await plain.get("/echo")).json()["headers"]
        transport = AiohttpTransport()
        async with httpx.AsyncClient(base_url=upstream, transport=transport) as on_aiohttp:
            aiohttp_headers = (await on_aiohttp.get("/echo")).json()["headers"]

    assert "traceparent" not in plain_headers
    assert "traceparent" not in aiohttp_headers


async def test_under_an_unsampled_span_calls_and_statements_pass_its_context_on(
    peer: httpx.AsyncClient, database_url: str, sent: Sent
) -> None:
    caller = SpanContext(
        trace_id=random.getrandbits(128),
        span_id=random.getrandbits(64),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.DEFAULT),  # not sampled
    )
    engine = create_engine(database_url)
    unsampled = tracer.start_span("handler", trace.set_span_in_context(NonRecordingSpan(caller)))
    try:
        with trace.use_span(unsampled):
            answer = await peer.get("/echo")
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    finally:
        await engine.dispose()

    trace_id, span_id = ids(unsampled)
    assert not unsampled.is_recording()
    assert answer.json()["headers"]["traceparent"] == f"00-{trace_id}-{span_id}-00"
    assert sent(trace_id) == []


@pytest.fixture(scope="module")
def database_url(postgres_server: PostgresServer) -> str:
    return create_database(postgres_server, "cl_telemetry")


async def test_a_statement_is_a_span_with_its_text_but_not_its_values(
    database_url: str, sent: Sent
) -> None:
    engine = create_engine(database_url)
    try:
        with tracer.start_as_current_span("handler") as handler:
            async with engine.connect() as connection:
                await connection.execute(
                    text("SELECT :email AS email, :born AS born"),
                    {"email": "ada@example.org", "born": "1815-12-10"},
                )
    finally:
        await engine.dispose()

    trace_id, handler_id = ids(handler)
    [span] = sent(trace_id, "CLIENT")
    url = urlsplit(database_url)
    assert (span.name, span.parent_span_id) == ("SELECT cl_telemetry", handler_id)
    assert span.attributes["db.query.text"].startswith("SELECT $1")
    assert span.attributes == {
        "db.system.name": "postgresql",
        "db.namespace": "cl_telemetry",
        "server.address": url.hostname,
        "server.port": url.port,
        "db.operation.name": "SELECT",
        "db.query.text": span.attributes["db.query.text"],
    }
    assert "ada@example.org" not in repr(span)
    assert "1815" not in repr(span)


async def test_a_statement_outside_a_trace_makes_no_span(
    database_url: str, otlp: OtlpReceiver, sent: Sent
) -> None:
    engine = create_engine(database_url)
    started_ns = time.time_ns()
    try:
        await ping_database(engine)  # a readiness probe's
        with tracer.start_as_current_span("handler") as handler:
            await ping_database(engine)
    finally:
        await engine.dispose()

    assert [span.name for span in sent(ids(handler)[0], "CLIENT")] == ["SELECT cl_telemetry"]
    # Other tests of the session (the events') ping inside their own traces, earlier.
    pings = otlp.matching(
        lambda span: (
            span.attributes.get("db.query.text") == "SELECT 1" and span.start_ns >= started_ns
        )
    )
    assert [span.trace_id for span in pings] == [ids(handler)[0]]


async def test_a_failed_statement_is_an_error_span(database_url: str, sent: Sent) -> None:
    engine = create_engine(database_url)
    try:
        with tracer.start_as_current_span("handler") as handler:
            async with engine.connect() as connection:
                with pytest.raises(exc.ProgrammingError):
                    await connection.execute(
                        text("SELECT * FROM no_such_table WHERE email = :email"),
                        {"email": "ada@example.org"},
                    )
    finally:
        await engine.dispose()

    trace_id = ids(handler)[0]
    [span] = sent(trace_id, "CLIENT")
    assert span.status == "ERROR"
    assert span.attributes["error.type"].endswith("ProgrammingError")
    assert "ada@example.org" not in repr(span)
