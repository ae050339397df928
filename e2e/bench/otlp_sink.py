"""A tiny OTLP/HTTP receiver for item 8: it accepts ``POST /v1/traces`` and counts what arrives.

It answers every export with 200 and an empty ``ExportTraceServiceResponse`` (what a collector
answers when it took every span), keeps the bodies, and counts them when asked: requests, bytes,
spans, distinct traces and spans by ``service.name``. The bodies are only read after the
measurement, so that a configuration that exports more pays for its exporting, not for the
benchmark's bookkeeping. Spans are counted straight from the protobuf wire format of
``ExportTraceServiceRequest`` (``resource_spans`` 1, its ``resource`` 1 and ``scope_spans`` 2,
their ``spans`` 2, a span's ``trace_id`` 1), so the harness needs no opentelemetry-proto; an
``http/json`` export is read as JSON. ``common_libs.testing.otlp`` is to provide the fleet's own
receiver; this one is the benchmark's until then.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["OtlpSink", "Received"]

TRACES_PATH = "/v1/traces"
_UNNAMED = "(no service.name)"


@dataclass(frozen=True)
class Received:
    """What one sink received."""

    requests: int
    bytes: int
    spans: int
    traces: int
    by_service: dict[str, int] = field(default_factory=dict)
    undecoded: int = 0

    def as_json(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "bytes": self.bytes,
            "spans": self.spans,
            "traces": self.traces,
            "spans_by_service": dict(sorted(self.by_service.items())),
            "undecoded_requests": self.undecoded,
        }


@dataclass(frozen=True)
class _Export:
    body: bytes
    content_type: str
    gzipped: bool


class OtlpSink:
    """An OTLP/HTTP receiver on 127.0.0.1 and a free port, in a thread of this process.

    ``with OtlpSink() as sink:`` starts it; ``sink.endpoint`` is the value for
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the SDK posts to ``/v1/traces`` under it);
    ``sink.received()`` counts what came so far.
    """

    def __init__(self) -> None:
        self._exports: list[_Export] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> OtlpSink:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _keep(self, export: _Export) -> None:
        with self._lock:
            self._exports.append(export)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            # Keep-alive, as a collector answers: the exporter's session reuses its connection.
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path != TRACES_PATH:
                    self._answer(404)
                    return
                sink._keep(
                    _Export(
                        body=body,
                        content_type=self.headers.get("Content-Type", ""),
                        gzipped=self.headers.get("Content-Encoding", "") == "gzip",
                    )
                )
                self._answer(200)

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: one line per export would flood the benchmark's output."""

        return Handler

    def received(self) -> Received:
        """Everything received so far, counted."""
        with self._lock:
            exports = list(self._exports)
        by_service: Counter[str] = Counter()
        traces: set[bytes | str] = set()
        undecoded = 0
        for export in exports:
            body = gzip.decompress(export.body) if export.gzipped else export.body
            try:
                if "json" in export.content_type:
                    _count_json(json.loads(body), by_service, traces)
                else:
                    _count_protobuf(body, by_service, traces)
            except (ValueError, KeyError, IndexError):
                undecoded += 1
        return Received(
            requests=len(exports),
            bytes=sum(len(export.body) for export in exports),
            spans=sum(by_service.values()),
            traces=len(traces),
            by_service=dict(by_service),
            undecoded=undecoded,
        )


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7


def _fields(message: bytes) -> Iterator[tuple[int, bytes]]:
    """The (field number, bytes) of a protobuf message's length-delimited fields; others skipped."""
    position = 0
    while position < len(message):
        key, position = _varint(message, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            _, position = _varint(message, position)
        elif wire_type == 1:
            position += 8
        elif wire_type == 5:
            position += 4
        elif wire_type == 2:
            length, position = _varint(message, position)
            yield number, message[position : position + length]
            position += length
        else:
            raise ValueError(f"unexpected protobuf wire type {wire_type}")
    if position != len(message):
        raise ValueError("truncated protobuf message")


def _service_name(resource: bytes) -> str | None:
    """``service.name`` among a Resource's attributes (KeyValue: key 1, AnyValue 2: string 1)."""
    for number, attribute in _fields(resource):
        if number != 1:
            continue
        parts = dict(_fields(attribute))
        if parts.get(1) == b"service.name":
            value = dict(_fields(parts.get(2, b"")))
            return value.get(1, b"").decode()
    return None


def _count_protobuf(body: bytes, by_service: Counter[str], traces: set[bytes | str]) -> None:
    for number, resource_spans in _fields(body):
        if number != 1:
            continue
        service, spans = _UNNAMED, 0
        for part, value in _fields(resource_spans):
            if part == 1:
                service = _service_name(value) or _UNNAMED
            elif part == 2:
                for scope_part, span in _fields(value):
                    if scope_part == 2:
                        spans += 1
                        traces.add(dict(_fields(span)).get(1, b""))
        by_service[service] += spans


def _count_json(body: Any, by_service: Counter[str], traces: set[bytes | str]) -> None:
    for resource_spans in body.get("resourceSpans", []):
        attributes = resource_spans.get("resource", {}).get("attributes", [])
        names = [
            item["value"].get("stringValue") for item in attributes if item["key"] == "service.name"
        ]
        spans = [
            span
            for scope_spans in resource_spans.get("scopeSpans", [])
            for span in scope_spans.get("spans", [])
        ]
        by_service[names[0] if names else _UNNAMED] += len(spans)
        traces.update(span.get("traceId", "") for span in spans)
