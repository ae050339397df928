"""A tiny OTLP/HTTP receiver for item 8: it accepts ``POST /v1/traces`` and counts what arrives.

It answers every export with 200 and an empty ``ExportTraceServiceResponse`` (what a collector
answers when it took every span), keeps the bodies, and counts them when asked: requests, bytes,
spans, distinct traces and spans by ``service.name``. The bodies are only read after the
measurement, so that a configuration that exports more pays for its exporting, not for the
benchmark's bookkeeping (``common_libs.testing.otlp``'s receiver, which the tests use, decodes
each export as it arrives, in this process, on the cores the services are measured on). The
bodies are decoded with ``opentelemetry-proto`` (OTLP/HTTP protobuf, the exporter's default).
"""

from __future__ import annotations

import gzip
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

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
    # Spans without a parent: traces this configuration's sampler started (the others continue
    # a trace that came in sampled, such as an event published by another configuration).
    roots: int = 0
    by_service: dict[str, int] = field(default_factory=dict)
    undecoded: int = 0

    def as_json(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "bytes": self.bytes,
            "spans": self.spans,
            "traces": self.traces,
            "root_spans": self.roots,
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
        traces: set[bytes] = set()
        undecoded = 0
        roots = 0
        for export in exports:
            request = ExportTraceServiceRequest()
            try:
                request.ParseFromString(
                    gzip.decompress(export.body) if export.gzipped else export.body
                )
            except (DecodeError, OSError):
                undecoded += 1
                continue
            for resource_spans in request.resource_spans:
                names = [
                    attribute.value.string_value
                    for attribute in resource_spans.resource.attributes
                    if attribute.key == "service.name"
                ]
                for scope_spans in resource_spans.scope_spans:
                    by_service[names[0] if names else _UNNAMED] += len(scope_spans.spans)
                    traces.update(span.trace_id for span in scope_spans.spans)
                    roots += sum(1 for span in scope_spans.spans if not span.parent_span_id)
        return Received(
            requests=len(exports),
            bytes=sum(len(export.body) for export in exports),
            spans=sum(by_service.values()),
            traces=len(traces),
            roots=roots,
            by_service=dict(by_service),
            undecoded=undecoded,
        )
