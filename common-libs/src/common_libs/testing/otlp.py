"""A real OTLP/HTTP receiver for tests: what services export, as plain records.

``OtlpReceiver`` listens on a free port of 127.0.0.1 in a thread of the test process and accepts
``POST /v1/traces`` (protobuf, plain or gzip), as a collector does. Start a service with
``OTEL_EXPORTER_OTLP_ENDPOINT=<receiver.endpoint>`` and wait for the spans the test expects::

    with OtlpReceiver() as receiver:
        ...  # a service exporting to receiver.endpoint handles a request
        [server] = receiver.wait_for_spans(lambda s: s.name == "GET /orders/{order_id}")
"""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from common_libs.testing.processes import StartStop, eventually, free_port, wait_until

__all__ = ["OtlpReceiver", "ReceivedSpan"]

_PROTOBUF = "application/x-protobuf"
_DECOMPRESS: Mapping[str, Callable[[bytes], bytes]] = {
    "": lambda body: body,
    "identity": lambda body: body,
    "gzip": gzip.decompress,
    "deflate": zlib.decompress,
}


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as it reached the receiver (ids in lowercase hex)."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    """``SERVER``, ``CLIENT``, ``INTERNAL``, ``PRODUCER`` or ``CONSUMER``."""
    service: str | None
    """The exporting resource's ``service.name``."""
    attributes: dict[str, Any]
    resource: dict[str, Any]
    status: str
    """``UNSET``, ``OK`` or ``ERROR``."""
    start_ns: int
    end_ns: int


class OtlpReceiver(StartStop):
    """An OTLP/HTTP trace receiver in a thread; ``spans`` holds everything received."""

    def __init__(self) -> None:
        self.port = free_port()
        self._spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """The base URL, for ``OTEL_EXPORTER_OTLP_ENDPOINT`` (exporters add ``/v1/traces``)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def traces_url(self) -> str:
        """The full URL, for ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``."""
        return self.endpoint + "/v1/traces"

    @property
    def spans(self) -> list[ReceivedSpan]:
        """Every span received so far, in the order they arrived."""
        with self._lock:
            return list(self._spans)

    def clear(self) -> None:
        """Forget the spans received so far."""
        with self._lock:
            self._spans.clear()

    def matching(self, predicate: Callable[[ReceivedSpan], bool]) -> list[ReceivedSpan]:
        """The spans received so far for which ``predicate`` holds."""
        return [span for span in self.spans if predicate(span)]

    def wait_for_spans(
        self,
        predicate: Callable[[ReceivedSpan], bool],
        *,
        count: int = 1,
        timeout: float = 10.0,
    ) -> list[ReceivedSpan]:
        """Wait until ``count`` spans match ``predicate``; return them (more if more came)."""
        wait_until(
            lambda: len(self.matching(predicate)) >= count,
            timeout=timeout,
            message=f"{count} matching span(s) received",
        )
        return self.matching(predicate)

    async def spans_eventually(
        self,
        predicate: Callable[[ReceivedSpan], bool],
        *,
        count: int = 1,
        within: float = 10.0,
    ) -> list[ReceivedSpan]:
        """:meth:`wait_for_spans` for async tests: waits without blocking the event loop."""
        await eventually(
            lambda: len(self.matching(predicate)) >= count,
            within=within,
            message=f"{count} matching span(s) received",
        )
        return self.matching(predicate)

    def start(self) -> Self:
        """Start serving in a daemon thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _receive(self, request: ExportTraceServiceRequest) -> None:
        received = []
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                received += [_record(span, resource) for span in scope_spans.spans]
        with self._lock:
            self._spans.extend(received)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != "/v1/traces":
                    self._answer(404, b"")
                    return
                content_type = self.headers.get("Content-Type", "").split(";")[0].strip()
                decompress = _DECOMPRESS.get(self.headers.get("Content-Encoding", "").lower())
                if content_type != _PROTOBUF or decompress is None:
                    self._answer(415, b"")
                    return
                request = ExportTraceServiceRequest()
                request.ParseFromString(decompress(body))
                receiver._receive(request)
                self._answer(200, ExportTraceServiceResponse().SerializeToString())

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", _PROTOBUF)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test reads the spans, not an access log."""

        return Handler


def _record(span: Span, resource: dict[str, Any]) -> ReceivedSpan:
    service = resource.get("service.name")
    return ReceivedSpan(
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex() or None,
        name=span.name,
        kind=Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
        service=service if isinstance(service, str) else None,
        attributes=_attributes(span.attributes),
        resource=resource,
        status=Status.StatusCode.Name(span.status.code).removeprefix("STATUS_CODE_"),
        start_ns=span.start_time_unix_nano,
        end_ns=span.end_time_unix_nano,
    )


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(item) for item in value.array_value.values)
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return None if kind is None else getattr(value, kind)
