"""The fleet's one fake: an OpenAI-compatible test server, as a pure ASGI app.

It speaks the real wire protocol, so a service reaches it through the real ``openai`` SDK:

- ``POST /v1/chat/completions``: a ``chat.completion``, or with ``"stream": true`` server-sent
  ``chat.completion.chunk`` events (a usage chunk when ``stream_options.include_usage`` asks for
  one), ending with ``data: [DONE]``; a reply is text or ``tool_calls``;
- ``POST /v1/embeddings``: vectors as floats, or base64 (what the SDK asks for);
- anything else: ``404``; with ``LLM_SERVER_API_KEY`` set, another key: ``401``; both as
  OpenAI error objects.

Tests script it through ``/_control/`` endpoints (typed in :mod:`common_libs.testing.llm`): each
request takes the next queued behaviour of its endpoint (``reply``, ``tool_calls``, ``status``,
``hang``); a chat request with none queued is answered by the first rule over its conversation
that matches (:mod:`common_libs.testing.llm_rules`), else by the default reply. A stream can wait
at a named gate until released, drop the connection on purpose, or pause before each chunk. Every
request (with the rule that answered it) and every stream is recorded, with the server's own time
to the first content chunk. Run it with uvicorn on asyncio, which sets ``TCP_NODELAY`` on every
connection: each chunk leaves when it is sent, never held back by Nagle's algorithm.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import time
from collections import deque
from typing import Any

from starlette.types import Receive, Scope, Send

from common_libs.testing.llm_rules import answer_by_rules

__all__ = ["DEFAULT_DELTAS", "EMBEDDING_DIMENSIONS", "app"]

DEFAULT_DELTAS = ("Hello", " from", " the", " test", " server.")
EMBEDDING_DIMENSIONS = 8
_JSON = (b"content-type", b"application/json")


class _State:
    """What the server remembers between requests."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.queues: dict[str, deque[dict[str, Any]]] = {"chat": deque(), "embeddings": deque()}
        self.requests: list[dict[str, Any]] = []
        self.streams: list[dict[str, Any]] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.rules: list[dict[str, Any]] = []
        self.chat_count = 0

    def next_behaviour(self, endpoint: str) -> dict[str, Any]:
        queue = self.queues[endpoint]
        return queue.popleft() if queue else {"kind": "reply"}

    def chat_behaviour(self, request: dict[str, Any]) -> dict[str, Any]:
        """The queued behaviour, else the first matching rule's (named in ``request``)."""
        self.chat_count += 1
        if not self.queues["chat"]:
            answer = answer_by_rules(self.rules, request["body"], self.chat_count)
            if answer is not None:
                behaviour, request["rule"] = answer
                return behaviour
        return self.next_behaviour("chat")

    def gate(self, name: str) -> asyncio.Event:
        return self.gates.setdefault(name, asyncio.Event())


_state = _State()


async def _read_body(receive: Receive) -> bytes:
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return body


async def _send_json(
    send: Send, status: int, payload: Any, headers: dict[str, str] | None = None
) -> None:
    extra = [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": [_JSON, *extra]})
    await send({"type": "http.response.body", "body": json.dumps(payload).encode()})


async def _send_error(send: Send, status: int, message: str, code: str) -> None:
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    await _send_json(send, status, {"error": error})


async def _disconnected(receive: Receive) -> None:
    """Return once the client has gone (its body is read: nothing else can arrive)."""
    await receive()


def _usage(behaviour: dict[str, Any], completion_tokens: int) -> dict[str, int]:
    usage = behaviour.get("usage") or {"prompt_tokens": 42, "completion_tokens": completion_tokens}
    return {**usage, "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"]}


def _tool_calls(behaviour: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": ""}}
        for call in behaviour["calls"]
    ]


def _pieces(behaviour: dict[str, Any]) -> list[dict[str, Any]]:
    """The deltas of a streamed answer after the first (role) chunk."""
    if behaviour["kind"] == "reply":
        return [{"content": delta} for delta in behaviour.get("deltas", DEFAULT_DELTAS)]
    pieces = []
    for index, (call, opening) in enumerate(
        zip(behaviour["calls"], _tool_calls(behaviour), strict=True)
    ):
        pieces.append({"tool_calls": [{"index": index, **opening}]})
        arguments = call["arguments"]
        # Arguments arrive in fragments, as the API sends them; a client must join them.
        for start in range(0, len(arguments), 8):
            fragment = {"arguments": arguments[start : start + 8]}
            pieces.append({"tool_calls": [{"index": index, "function": fragment}]})
    return pieces


def _message(behaviour: dict[str, Any]) -> dict[str, Any]:
    if behaviour["kind"] == "reply":
        content = "".join(behaviour.get("deltas", DEFAULT_DELTAS))
        return {"role": "assistant", "content": content, "refusal": None}
    calls = _tool_calls(behaviour)
    for call, scripted in zip(calls, behaviour["calls"], strict=True):
        call["function"]["arguments"] = scripted["arguments"]
    return {"role": "assistant", "content": None, "refusal": None, "tool_calls": calls}


def _completion(model: str, kind: str) -> dict[str, Any]:
    return {"id": "chatcmpl-test", "object": kind, "created": int(time.time()), "model": model}


def _chunk(model: str, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
    return {**_completion(model, "chat.completion.chunk"), "choices": [choice]}


async def _stream(
    send: Send, receive: Receive, request: dict[str, Any], behaviour: dict[str, Any]
) -> None:
    record: dict[str, Any] = request["stream_record"]
    model = str(request["body"].get("model", "unknown"))
    pieces = _pieces(behaviour)
    disconnected = asyncio.ensure_future(_disconnected(receive))

    async def event(data: str) -> None:
        chunk = f"data: {data}\n\n".encode()
        await send({"type": "http.response.body", "body": chunk, "more_body": True})

    try:
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await event(json.dumps(_chunk(model, {"role": "assistant", "content": ""})))
        for number, piece in enumerate(pieces):
            if behaviour.get("gate_after") == number:
                gate = asyncio.ensure_future(_state.gate(behaviour["gate"]).wait())
                await asyncio.wait({gate, disconnected}, return_when=asyncio.FIRST_COMPLETED)
                gate.cancel()
                if disconnected.done():
                    return
            if behaviour.get("abort_after") == number:
                raise ConnectionAbortedError("the test server drops the stream on purpose")
            if behaviour.get("delay_seconds"):
                await asyncio.sleep(behaviour["delay_seconds"])
            await event(json.dumps(_chunk(model, piece)))
            if number == 0:
                record["first_token_seconds"] = time.perf_counter() - request["received_at"]
            record["sent"] = number + 1
        finish = "stop" if behaviour["kind"] == "reply" else "tool_calls"
        await event(json.dumps(_chunk(model, {}, finish)))
        if (request["body"].get("stream_options") or {}).get("include_usage"):
            usage = _usage(behaviour, len(pieces))
            await event(json.dumps({**_chunk(model, {}), "choices": [], "usage": usage}))
        await event("[DONE]")
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        record["finished"] = True
    finally:
        record["closed_by_client"] = disconnected.done() and not record["finished"]
        disconnected.cancel()


async def _chat(send: Send, receive: Receive, request: dict[str, Any], received_at: float) -> None:
    behaviour = _state.chat_behaviour(request)
    if await _scripted_failure(send, receive, behaviour):
        return
    body = request["body"]
    if body.get("stream"):
        record = {"request_id": request["headers"].get("x-request-id"), "sent": 0}
        record |= {"finished": False, "closed_by_client": False, "first_token_seconds": None}
        _state.streams.append(record)
        streamed = {**request, "received_at": received_at, "stream_record": record}
        await _stream(send, receive, streamed, behaviour)
        return
    message = _message(behaviour)
    finish = "stop" if behaviour["kind"] == "reply" else "tool_calls"
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
    completion = _completion(str(body.get("model", "unknown")), "chat.completion")
    usage = _usage(behaviour, len(_pieces(behaviour)))
    await _send_json(send, 200, {**completion, "choices": [choice], "usage": usage})


def _vector(text: str, index: int) -> list[float]:
    return [float(len(text)), float(index)] + [0.5] * (EMBEDDING_DIMENSIONS - 2)


async def _embeddings(send: Send, receive: Receive, request: dict[str, Any]) -> None:
    if await _scripted_failure(send, receive, _state.next_behaviour("embeddings")):
        return
    body = request["body"]
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    data = []
    for index, text in enumerate(inputs):
        vector = _vector(str(text), index)
        encoded: Any = vector
        if body.get("encoding_format") == "base64":
            encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = sum(len(str(text).split()) for text in inputs)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    model = body.get("model", "unknown")
    await _send_json(send, 200, {"object": "list", "data": data, "model": model, "usage": usage})


async def _scripted_failure(send: Send, receive: Receive, behaviour: dict[str, Any]) -> bool:
    """Answer a ``status`` or ``hang`` behaviour; False for an answer (the endpoint's own job)."""
    if behaviour["kind"] == "status":
        body = behaviour.get("body") or {
            "error": {"message": "scripted failure", "type": "server_error", "code": None}
        }
        await _send_json(send, behaviour["status"], body, behaviour.get("headers"))
        return True
    if behaviour["kind"] == "hang":
        await _disconnected(receive)
        return True
    return False


async def _control(send: Send, method: str, path: str, body: bytes) -> None:
    if (method, path) == ("POST", "/_control/reset"):
        _state.reset()
    elif (method, path) == ("POST", "/_control/enqueue"):
        script = json.loads(body)
        _state.queues[script["endpoint"]].extend(script["behaviours"])
    elif (method, path) == ("POST", "/_control/rules"):
        script = json.loads(body)
        if script["endpoint"] != "chat":
            await _send_error(send, 400, "rules answer chat completions only", "invalid_endpoint")
            return
        _state.rules = script["rules"]
    elif method == "POST" and path.startswith("/_control/release/"):
        _state.gate(path.removeprefix("/_control/release/")).set()
    elif (method, path) == ("GET", "/_control/state"):
        await _send_json(send, 200, {"requests": _state.requests, "streams": _state.streams})
        return
    else:
        await _send_error(send, 404, f"no control endpoint {method} {path}", "not_found")
        return
    await _send_json(send, 200, {"ok": True})


async def _lifespan(receive: Receive, send: Send) -> None:
    while (await receive())["type"] != "lifespan.shutdown":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI application."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    received_at = time.perf_counter()
    method, path = scope["method"], scope["path"]
    raw = await _read_body(receive)
    if path == "/health":
        await _send_json(send, 200, {"status": "ok"})
        return
    if path.startswith("/_control/"):
        await _control(send, method, path, raw)
        return
    headers = {name.decode().lower(): value.decode() for name, value in scope["headers"]}
    body = json.loads(raw) if raw else {}
    request = {"method": method, "path": path, "headers": headers, "body": body, "rule": None}
    _state.requests.append(request)
    api_key = os.environ.get("LLM_SERVER_API_KEY")
    if api_key and headers.get("authorization") != f"Bearer {api_key}":
        await _send_error(send, 401, "Incorrect API key provided.", "invalid_api_key")
    elif (method, path) == ("POST", "/v1/chat/completions"):
        await _chat(send, receive, request, received_at)
    elif (method, path) == ("POST", "/v1/embeddings"):
        await _embeddings(send, receive, request)
    else:
        await _send_error(send, 404, f"unknown path {path}", "not_found")
