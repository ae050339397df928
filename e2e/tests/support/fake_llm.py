"""An OpenAI-compatible test server: the one fake of the end-to-end suite.

It speaks the real wire protocol on 127.0.0.1, so the chat service reaches it through the real
``openai`` SDK, configured only by ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``:

- ``POST /v1/chat/completions``: a JSON completion, or with ``"stream": true`` server-sent events
  (``chat.completion.chunk`` objects, a usage chunk when ``stream_options.include_usage`` asks
  for one, then ``data: [DONE]``), sent with chunked transfer encoding as each chunk is made;
- ``POST /v1/embeddings``: vectors as floats or base64 (the SDK asks for base64);
- anything else: ``404``; a wrong or missing API key: ``401``; both as OpenAI error objects.

Each request is recorded (``received``). Tests script replies with ``enqueue(Reply(...))``: a
reply can stream slowly (``delay_seconds`` before each chunk) and wait for an event
(``hold_last_chunk``) before sending its last content chunk; ``last_chunk_sent`` tells when it
did. Standard library only; it runs in threads of the test process.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["DEFAULT_DELTAS", "FakeLlm", "Received", "Reply"]

DEFAULT_DELTAS: tuple[str, ...] = ("Happy", " to", " help", " with", " that.")
EMBEDDING_DIMENSIONS = 8


@dataclass
class Reply:
    """How the server answers one chat completion (the next one that arrives)."""

    deltas: Sequence[str] = DEFAULT_DELTAS
    # Streaming only: a pause before each chunk, and an event to wait for before the last one.
    delay_seconds: float = 0.0
    hold_last_chunk: threading.Event | None = None
    # A safety net: a held stream goes on after this long, so a broken test fails, never hangs.
    hold_timeout_seconds: float = 60.0
    # Set by the server.
    last_chunk_sent: threading.Event = field(default_factory=threading.Event)
    client_disconnected: threading.Event = field(default_factory=threading.Event)

    @property
    def content(self) -> str:
        return "".join(self.deltas)


@dataclass(frozen=True)
class Received:
    """One request as the server got it."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    def message_texts(self) -> list[str]:
        """The ``content`` of every message of a chat completion request."""
        return _message_texts(self.body)


class FakeLlm:
    """The server: ``start()`` it, give the fleet ``base_url`` and ``api_key``, ``stop()`` it."""

    api_key = "e2e-fake-llm-key"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._replies: deque[Reply] = deque()
        self._received: list[Received] = []
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-llm", daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> FakeLlm:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def enqueue(self, reply: Reply) -> Reply:
        """The next chat completion answers with ``reply`` (returned, to watch its events)."""
        with self._lock:
            self._replies.append(reply)
        return reply

    def next_reply(self) -> Reply:
        with self._lock:
            return self._replies.popleft() if self._replies else Reply()

    def record(self, received: Received) -> None:
        with self._lock:
            self._received.append(received)

    def received(self, path: str | None = None) -> list[Received]:
        """Every request so far (to ``path``, e.g. ``/v1/chat/completions``, when given)."""
        with self._lock:
            return [r for r in self._received if path is None or r.path == path]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeLlm


def _chunk(model: str, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-e2e",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def _message_texts(body: dict[str, Any]) -> list[str]:
    return [str(message.get("content", "")) for message in body.get("messages", [])]


def _usage(body: dict[str, Any], reply: Reply) -> dict[str, int]:
    """Token counts in the shape the API reports them (words stand in for tokens)."""
    prompt = sum(len(text.split()) for text in _message_texts(body))
    completion = len(reply.deltas)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _vector(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [byte / 255 for byte in digest[:EMBEDDING_DIMENSIONS]]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    # An idle keep-alive connection is closed after this long (the thread then ends).
    timeout = 120

    def setup(self) -> None:
        # As servers on asyncio do: without TCP_NODELAY, Nagle's algorithm holds each small
        # streamed chunk until the previous one is acknowledged (up to a delayed ACK, 40 ms).
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: what matters is recorded in ``FakeLlm.received``."""

    def do_GET(self) -> None:
        self._record({})
        self._error(404, f"unknown path {self.path}", "not_found")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: dict[str, Any] = json.loads(raw) if raw else {}
        self._record(body)
        if self.headers.get("Authorization") != f"Bearer {FakeLlm.api_key}":
            self._error(401, "Incorrect API key provided.", "invalid_api_key")
        elif self.path == "/v1/chat/completions":
            self._chat(body)
        elif self.path == "/v1/embeddings":
            self._embeddings(body)
        else:
            self._error(404, f"unknown path {self.path}", "not_found")

    def _record(self, body: dict[str, Any]) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.server.fake.record(Received(self.command, self.path, headers, body))

    def _json(self, status: int, payload: Any) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _error(self, status: int, message: str, code: str) -> None:
        self._json(
            status, {"error": {"message": message, "type": "invalid_request_error", "code": code}}
        )

    def _chat(self, body: dict[str, Any]) -> None:
        reply = self.server.fake.next_reply()
        model = str(body.get("model", "unknown"))
        if body.get("stream"):
            self._stream(body, reply, model)
            return
        self._json(
            200,
            {
                "id": "chatcmpl-e2e",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply.content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": _usage(body, reply),
            },
        )
        reply.last_chunk_sent.set()

    def _stream(self, body: dict[str, Any], reply: Reply, model: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        events: list[Any] = [_chunk(model, {"role": "assistant", "content": ""})]
        events += [_chunk(model, {"content": delta}) for delta in reply.deltas]
        last_content = len(events) - 1
        events.append(_chunk(model, {}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({**_chunk(model, {}), "choices": [], "usage": _usage(body, reply)})
        events.append("[DONE]")
        try:
            for number, event in enumerate(events):
                if number == last_content and reply.hold_last_chunk is not None:
                    reply.hold_last_chunk.wait(reply.hold_timeout_seconds)
                if reply.delay_seconds:
                    time.sleep(reply.delay_seconds)
                data = event if isinstance(event, str) else json.dumps(event)
                self._write_chunk(f"data: {data}\n\n".encode())
                if number == last_content:
                    reply.last_chunk_sent.set()
            self._write_chunk(b"")
        except (BrokenPipeError, ConnectionResetError):
            reply.client_disconnected.set()
            self.close_connection = True

    def _write_chunk(self, payload: bytes) -> None:
        """One piece of a chunked body, sent at once (an empty one ends the body)."""
        self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
        self.wfile.flush()

    def _embeddings(self, body: dict[str, Any]) -> None:
        raw_input = body.get("input", [])
        inputs = raw_input if isinstance(raw_input, list) else [raw_input]
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(inputs):
            vector = _vector(str(text))
            encoded: Any = vector
            if as_base64:
                encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(len(str(text).split()) for text in inputs)
        self._json(
            200,
            {
                "object": "list",
                "data": data,
                "model": body.get("model", "unknown"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )
