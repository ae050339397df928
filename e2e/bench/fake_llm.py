"""An OpenAI-compatible test server that times its own first token.

The approach of the e2e suite's ``tests/support/fake_llm.py`` (the real wire protocol on
127.0.0.1, reached by the chat service through the real ``openai`` SDK), cut down to what the
benchmark needs: ``POST /v1/chat/completions`` as JSON or as server-sent events, sent chunk by
chunk. For every streamed completion it records, under the ``X-Request-ID`` the chat service
forwards, when the request was in (headers read) and when the first chunk with content was
flushed to the socket: the server's own time to first token, which the benchmark subtracts from
what the client sees through the gateway.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["BenchLlm", "FirstToken"]

DELTAS = ("Yes,", " we", " have", " walnut", " desks", " in", " stock.")


@dataclass(frozen=True)
class FirstToken:
    """When one streamed completion came in and when its first content chunk went out."""

    received_at: float
    first_token_at: float

    @property
    def seconds(self) -> float:
        """The server's own time to first token."""
        return self.first_token_at - self.received_at


class BenchLlm:
    """``start()`` it, give the fleet ``base_url`` and ``api_key``, ``stop()`` it."""

    api_key = "bench-fake-llm-key"

    def __init__(self, *, think_seconds: float = 0.0) -> None:
        self.think_seconds = think_seconds
        self._lock = threading.Lock()
        self._first_tokens: dict[str, FirstToken] = {}
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.llm = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> BenchLlm:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def record(self, request_id: str, first_token: FirstToken) -> None:
        with self._lock:
            self._first_tokens[request_id] = first_token

    def first_token(self, request_id: str) -> FirstToken | None:
        """The timing of the streamed completion made for this request id, if one was."""
        with self._lock:
            return self._first_tokens.get(request_id)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    llm: BenchLlm


def _chunk(model: str, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
    event = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }
    return f"data: {json.dumps(event)}\n\n".encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 120

    def setup(self) -> None:
        # As servers on asyncio do: without TCP_NODELAY, Nagle's algorithm holds each small
        # chunk until the previous one is acknowledged (up to a delayed ACK, 40 ms), after the
        # server has noted it as sent.
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_POST(self) -> None:
        received_at = time.perf_counter()
        length = int(self.headers.get("Content-Length") or 0)
        body: dict[str, Any] = json.loads(self.rfile.read(length)) if length else {}
        if self.headers.get("Authorization") != f"Bearer {BenchLlm.api_key}":
            self._json(401, {"error": {"message": "bad key", "code": "invalid_api_key"}})
        elif self.path != "/v1/chat/completions":
            self._json(404, {"error": {"message": f"unknown path {self.path}"}})
        elif body.get("stream"):
            self._stream(body, received_at)
        else:
            self._complete(body)

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _complete(self, body: dict[str, Any]) -> None:
        message = {"role": "assistant", "content": "".join(DELTAS)}
        usage = {"prompt_tokens": 10, "completion_tokens": len(DELTAS), "total_tokens": 17}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        completion = {"id": "chatcmpl-bench", "object": "chat.completion", "choices": [choice]}
        self._json(200, {**completion, "model": body.get("model"), "usage": usage})

    def _stream(self, body: dict[str, Any], received_at: float) -> None:
        model = str(body.get("model", "unknown"))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._write(_chunk(model, {"role": "assistant", "content": ""}))
        if self.server.llm.think_seconds:
            time.sleep(self.server.llm.think_seconds)
        for number, delta in enumerate(DELTAS):
            self._write(_chunk(model, {"content": delta}))
            if number == 0:
                first = FirstToken(received_at, time.perf_counter())
                self.server.llm.record(self.headers.get("X-Request-ID", ""), first)
        self._write(_chunk(model, {}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {"prompt_tokens": 10, "completion_tokens": len(DELTAS), "total_tokens": 17}
            usage_chunk: dict[str, Any] = {"id": "chatcmpl-bench", "model": model}
            usage_chunk |= {"object": "chat.completion.chunk", "choices": [], "usage": usage}
            self._write(f"data: {json.dumps(usage_chunk)}\n\n".encode())
        self._write(b"data: [DONE]\n\n")
        self._write(b"")

    def _write(self, payload: bytes) -> None:
        """One piece of the chunked body, flushed at once (an empty one ends the body)."""
        self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
        self.wfile.flush()
