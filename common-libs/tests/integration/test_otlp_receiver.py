"""OtlpReceiver: what the real OTLP/HTTP exporter sends arrives as plain span records."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from common_libs.testing.otlp import OtlpReceiver, ReceivedSpan

PROTOBUF = {"Content-Type": "application/x-protobuf"}


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


def exporting_provider(receiver: OtlpReceiver, compression: Compression) -> TracerProvider:
    """A provider of the test's own that sends each span as it ends."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": "inventory", "service.version": "2.0.0"}),
        shutdown_on_exit=False,
    )
    exporter = OTLPSpanExporter(endpoint=receiver.traces_url, compression=compression)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_spans_from_the_exporter_arrive_as_records(
    receiver: OtlpReceiver, compression: Compression
) -> None:
    provider = exporting_provider(receiver, compression)
    tracer = provider.get_tracer("test")
    attributes = {"rows": 3, "skus": ("a-1", "b-2")}
    with (
        tracer.start_as_current_span("reserve stock", kind=SpanKind.SERVER) as parent,
        tracer.start_as_current_span(
            "SELECT", kind=SpanKind.CLIENT, attributes=attributes
        ) as child,
    ):
        child.set_status(Status(StatusCode.ERROR))
    provider.shutdown()

    [server] = receiver.wait_for_spans(lambda span: span.kind == "SERVER")
    [client] = receiver.wait_for_spans(lambda span: span.kind == "CLIENT")
    assert server.trace_id == format(parent.get_span_context().trace_id, "032x")
    assert server.span_id == format(parent.get_span_context().span_id, "016x")
    assert server.parent_span_id is None
    assert (server.name, server.service, server.status) == ("reserve stock", "inventory", "UNSET")
    assert server.resource["service.version"] == "2.0.0"
    assert client.parent_span_id == server.span_id
    assert client.trace_id == server.trace_id
    assert client.attributes == {"rows": 3, "skus": ("a-1", "b-2")}
    assert client.status == "ERROR"
    assert server.start_ns <= client.start_ns <= client.end_ns <= server.end_ns


def test_every_kind_of_attribute_value_is_decoded(receiver: OtlpReceiver) -> None:
    nested = KeyValueList(values=[KeyValue(key="region", value=AnyValue(string_value="eu"))])
    span = Span(
        trace_id=bytes(range(16)),
        span_id=bytes(range(8)),
        name="handmade",
        kind=Span.SpanKind.SPAN_KIND_PRODUCER,
        attributes=[
            KeyValue(key="where", value=AnyValue(kvlist_value=nested)),
            KeyValue(key="ratio", value=AnyValue(double_value=0.5)),
            KeyValue(key="ok", value=AnyValue(bool_value=True)),
            KeyValue(key="raw", value=AnyValue(bytes_value=b"\x00\x01")),
            KeyValue(key="empty", value=AnyValue()),
        ],
    )
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])]
    )

    answer = httpx.post(
        receiver.traces_url,
        content=gzip.compress(request.SerializeToString()),
        headers={**PROTOBUF, "Content-Encoding": "gzip"},
    )

    assert answer.status_code == 200
    [received] = receiver.spans
    assert received == ReceivedSpan(
        trace_id="000102030405060708090a0b0c0d0e0f",
        span_id="0001020304050607",
        parent_span_id=None,
        name="handmade",
        kind="PRODUCER",
        service=None,
        attributes={
            "where": {"region": "eu"},
            "ratio": 0.5,
            "ok": True,
            "raw": b"\x00\x01",
            "empty": None,
        },
        resource={},
        status="UNSET",
        start_ns=0,
        end_ns=0,
    )


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        pytest.param("/v1/metrics", PROTOBUF, 404, id="other-signal"),
        pytest.param("/v1/traces", {"Content-Type": "application/json"}, 415, id="json"),
        pytest.param("/v1/traces", {**PROTOBUF, "Content-Encoding": "br"}, 415, id="brotli"),
    ],
)
def test_what_is_not_protobuf_traces_is_refused(
    receiver: OtlpReceiver, path: str, headers: dict[str, str], status: int
) -> None:
    answer = httpx.post(receiver.endpoint + path, content=b"{}", headers=headers)

    assert answer.status_code == status
    assert receiver.spans == []


def test_waiting_for_spans_that_never_come_times_out(receiver: OtlpReceiver) -> None:
    with pytest.raises(TimeoutError, match="1 matching span"):
        receiver.wait_for_spans(lambda span: True, timeout=0.1)


async def test_spans_can_be_awaited_and_forgotten(receiver: OtlpReceiver) -> None:
    provider = exporting_provider(receiver, Compression.Deflate)
    with provider.get_tracer("test").start_as_current_span("nightly export"):
        pass

    [span] = await receiver.spans_eventually(lambda span: span.name == "nightly export")
    receiver.clear()

    assert span.service == "inventory"
    assert receiver.spans == []
    provider.shutdown()
