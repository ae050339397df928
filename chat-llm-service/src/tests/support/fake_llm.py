"""A small OpenAI-compatible test server: the only fake of the fleet.

It speaks the real wire protocol (``POST /v1/chat/completions`` as JSON or as server-sent events
ending in ``data: [DONE]``, ``POST /v1/embeddings``), so the service reaches it through the real
``openai`` SDK over real HTTP. Tests script it through control endpoints:

- ``POST /_control/enqueue`` ``{"endpoint": "chat" | "embeddings", "behaviours": [...]}``; each
  request takes the next behaviour (an empty queue answers a default reply):
  ``{"kind": "reply", "deltas": [...], "usage": {...} | null, "gate_after": n, "gate": name,
  "abort_after": n}``, ``{"kind": "status", "status": 429, "headers": {...}, "body": {...}}``,
  ``{"kind": "hang"}`` (never answers; waits for the client to leave).
- ``POST /_control/release/{gate}`` lets a stream waiting at ``gate`` go on.
- ``GET /_control/state`` returns the requests received and, per stream, how many deltas were
  sent, whether it finished and whether the client closed the connection first.
- ``POST /_control/reset`` forgets everything.

Run: ``python -m uvicorn tests.support.fake_llm:app --host 127.0.0.1 --port N``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import time
from collections import deque
from typing import Any

from starlette.types import Message, Receive, Scope, Send

DEFAULT_DELTAS = ["Hello", " from", " the", " test", " server."]
EMBEDDING_DIMENSIONS = 8


class FakeLlmState:
    """Everything the server remembers between requests."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget scripts, recordings and gates."""
        self.queues: dict[str, deque[dict[str, Any]]] = {"chat": deque(), "embeddings": deque()}
        self.requests: list[dict[str, Any]] = []
        self.streams: list[dict[str, Any]] = []
        self.gates: dict[str, asyncio.Event] = {}

    def gate(self, name: str) -> asyncio.Event:
        """The event a stream waits on at ``gate_after``."""
        return self.gates.setdefault(name, asyncio.Event())


state = FakeLlmState()


async def _read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def _send_json(
    send: Send, status: int, payload: Any, headers: dict[str, str] | None = None
) -> None:
    raw = json.dumps(payload).encode()
    header_list = [(b"content-type", b"application/json")]
    header_list += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": header_list})
    await send({"type": "http.response.body", "body": raw})


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _usage(behaviour: dict[str, Any], deltas: list[str]) -> dict[str, int]:
    usage = behaviour.get("usage") or {"prompt_tokens": 42, "completion_tokens": len(deltas)}
    return {**usage, "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"]}


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


async def _stream(
    send: Send,
    receive: Receive,
    request: dict[str, Any],
    behaviour: dict[str, Any],
    record: dict[str, Any],
) -> None:
    model = request.get("model", "unknown")
    deltas: list[str] = behaviour.get("deltas", DEFAULT_DELTAS)
    include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
    disconnected = asyncio.ensure_future(_wait_for_disconnect(receive))

    async def event(payload: Any) -> None:
        data = payload if isinstance(payload, str) else json.dumps(payload)
        body = f"data: {data}\n\n".encode()
        await send({"type": "http.response.body", "body": body, "more_body": True})

    try:
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await event(_chunk(model, {"role": "assistant", "content": ""}))
        for number, delta in enumerate(deltas):
            if behaviour.get("gate_after") == number:
                gate = asyncio.ensure_future(state.gate(behaviour["gate"]).wait())
                await asyncio.wait({gate, disconnected}, return_when=asyncio.FIRST_COMPLETED)
                gate.cancel()
                if disconnected.done():
                    record["closed_by_client"] = True
                    return
            if behaviour.get("abort_after") == number:
                raise ConnectionAbortedError("the test server drops the stream on purpose")
            await event(_chunk(model, {"content": delta}))
            record["sent"] = number + 1
        await event(_chunk(model, {}, "stop"))
        if include_usage:
            chunk = _chunk(model, {})
            chunk["choices"] = []
            chunk["usage"] = _usage(behaviour, deltas)
            await event(chunk)
        await event("[DONE]")
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        record["finished"] = True
    finally:
        if disconnected.done() and not record["finished"]:
            record["closed_by_client"] = True
        disconnected.cancel()


async def _chat(send: Send, receive: Receive, request: dict[str, Any]) -> None:
    queue = state.queues["chat"]
    behaviour = queue.popleft() if queue else {"kind": "reply"}
    if await _common_behaviour(send, receive, behaviour):
        return
    deltas: list[str] = behaviour.get("deltas", DEFAULT_DELTAS)
    if request.get("stream"):
        record = {"sent": 0, "finished": False, "closed_by_client": False}
        state.streams.append(record)
        await _stream(send, receive, request, behaviour, record)
        return
    await _send_json(
        send,
        200,
        {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", "unknown"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(deltas)},
                    "finish_reason": "stop",
                }
            ],
            "usage": _usage(behaviour, deltas),
        },
    )


def _vector(text: str, index: int) -> list[float]:
    return [float(len(text)), float(index)] + [0.5] * (EMBEDDING_DIMENSIONS - 2)


async def _embeddings(send: Send, receive: Receive, request: dict[str, Any]) -> None:
    queue = state.queues["embeddings"]
    behaviour = queue.popleft() if queue else {"kind": "reply"}
    if await _common_behaviour(send, receive, behaviour):
        return
    inputs = request["input"] if isinstance(request["input"], list) else [request["input"]]
    as_base64 = request.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(inputs):
        vector = _vector(str(text), index)
        encoded: Any = vector
        if as_base64:
            encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = sum(len(str(text).split()) for text in inputs)
    await _send_json(
        send,
        200,
        {
            "object": "list",
            "data": data,
            "model": request.get("model", "unknown"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        },
    )


async def _common_behaviour(send: Send, receive: Receive, behaviour: dict[str, Any]) -> bool:
    """Answer a status or hang behaviour; False for a reply (the endpoint's own job)."""
    if behaviour["kind"] == "status":
        body = behaviour.get("body") or {
            "error": {"message": "scripted failure", "type": "server_error", "code": None}
        }
        await _send_json(send, behaviour["status"], body, behaviour.get("headers"))
        return True
    if behaviour["kind"] == "hang":
        await _wait_for_disconnect(receive)
        return True
    return False


async def _control(send: Send, method: str, path: str, body: bytes) -> None:
    if method == "POST" and path == "/_control/reset":
        state.reset()
        await _send_json(send, 200, {"ok": True})
    elif method == "POST" and path == "/_control/enqueue":
        payload = json.loads(body)
        state.queues[payload["endpoint"]].extend(payload["behaviours"])
        await _send_json(send, 200, {"ok": True})
    elif method == "POST" and path.startswith("/_control/release/"):
        state.gate(path.rsplit("/", 1)[1]).set()
        await _send_json(send, 200, {"ok": True})
    elif method == "GET" and path == "/_control/state":
        await _send_json(send, 200, {"requests": state.requests, "streams": state.streams})
    else:
        await _send_json(send, 404, {"error": {"message": "no such control endpoint"}})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI application."""
    if scope["type"] == "lifespan":
        message: Message = await receive()
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        if message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
        return
    method, path = scope["method"], scope["path"]
    body = await _read_body(receive)
    if path == "/health":
        await _send_json(send, 200, {"status": "ok"})
        return
    if path.startswith("/_control/"):
        await _control(send, method, path, body)
        return
    request = json.loads(body) if body else {}
    headers = {k.decode(): v.decode() for k, v in scope["headers"]}
    state.requests.append(
        {
            "path": path,
            "authorization": headers.get("authorization"),
            "x_request_id": headers.get("x-request-id"),
            "body": request,
        }
    )
    if method == "POST" and path == "/v1/chat/completions":
        await _chat(send, receive, request)
    elif method == "POST" and path == "/v1/embeddings":
        await _embeddings(send, receive, request)
    else:
        await _send_json(send, 404, {"error": {"message": f"unknown path {path}"}})
