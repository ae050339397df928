"""The upstream service of the gateway tests: a small ASGI app that uvicorn runs in a subprocess.

One process per service (``STUB_SERVICE_NAME`` says which), so a test can tell where the gateway
routed a request. Under any path it:

- echoes the request as JSON (service, method, path, raw path, query, headers, HTTP version, the
  peer's port, body size), and answers headers that the gateway must override or hide (its own
  CORS headers among them);
- ``.../_sse?stream=ID``: sends one server-sent event, then waits until the test releases ID (or the
  client goes away) before it sends the closing ``done`` event;
- ``.../_slow?id=ID``: answers only once the test releases ID (or the client goes away);
- ``.../_status?code=N[&retry_after=S]``: answers status N as problem+json, like a service;
- ``.../_redirect?location=L``: answers 307 to L;
- ``.../_small``: a tiny JSON answer, for the benchmark.

Control endpoints, called by the tests directly (the gateway never routes to ``/__stub__``):
``GET /__stub__/ready``, ``GET /__stub__/requests``, ``GET /__stub__/disconnects``,
``POST /__stub__/release?id=ID``.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any
from urllib.parse import parse_qs

from starlette.types import Message, Receive, Scope, Send

SERVICE_NAME = os.environ.get("STUB_SERVICE_NAME", "stub")
# No wait in the stub lasts longer than this, so a broken test cannot leave a request hanging.
MAX_WAIT_SECONDS = 30.0

_requests: list[dict[str, Any]] = []
_disconnects: list[str] = []
_releases: dict[str, asyncio.Event] = {}


def _release_event(key: str) -> asyncio.Event:
    return _releases.setdefault(key, asyncio.Event())


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _query(scope: Scope) -> dict[str, str]:
    parsed = parse_qs(scope["query_string"].decode("latin-1"))
    return {key: values[0] for key, values in parsed.items()}


async def _read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return body
        chunk: bytes = message.get("body", b"")
        body += chunk
        if not message.get("more_body", False):
            return body


async def _send_json(
    send: Send,
    status: int,
    payload: object,
    *,
    content_type: bytes = b"application/json",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _released_or_disconnected(key: str, receive: Receive) -> bool:
    """Wait until the test releases ``key`` (True) or the client disconnects (False).

    A wait that outlives MAX_WAIT_SECONDS counts as released, so that the request still ends.
    """
    released = asyncio.ensure_future(_release_event(key).wait())
    disconnected = asyncio.ensure_future(_wait_for_disconnect(receive))
    done, pending = await asyncio.wait(
        {released, disconnected}, timeout=MAX_WAIT_SECONDS, return_when=asyncio.FIRST_COMPLETED
    )
    for task in pending:
        task.cancel()
    if disconnected in done:
        _disconnects.append(key)
        return False
    return True


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _control(scope: Scope, receive: Receive, send: Send) -> None:
    action = scope["path"].removeprefix("/__stub__/")
    if action == "ready":
        await _send_json(send, 200, {"service": SERVICE_NAME})
    elif action == "requests":
        await _send_json(send, 200, _requests)
    elif action == "disconnects":
        await _send_json(send, 200, _disconnects)
    elif action == "release" and scope["method"] == "POST":
        _release_event(_query(scope)["id"]).set()
        await _send_json(send, 200, {"released": True})
    else:
        await _send_json(send, 404, {"detail": "unknown control endpoint"})


async def _sse(scope: Scope, receive: Receive, send: Send) -> None:
    key = _query(scope)["stream"]
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/event-stream"),
                (b"cache-control", b"no-cache"),
            ],
        }
    )
    first = f"data: {json.dumps({'delta': 'first'})}\n\n".encode()
    await send({"type": "http.response.body", "body": first, "more_body": True})
    if await _released_or_disconnected(key, receive):
        done = f"event: done\ndata: {json.dumps({'stream': key})}\n\n".encode()
        await send({"type": "http.response.body", "body": done})


async def _slow(scope: Scope, receive: Receive, send: Send) -> None:
    if await _released_or_disconnected(_query(scope)["id"], receive):
        await _send_json(send, 200, {"status": "late"})


def _echo_payload(scope: Scope, body: bytes) -> dict[str, Any]:
    return {
        "service": SERVICE_NAME,
        "method": scope["method"],
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode("latin-1"),
        "query_string": scope["query_string"].decode("latin-1"),
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
        "http_version": scope["http_version"],
        "client_port": scope["client"][1] if scope.get("client") else None,
        "body_bytes": len(body),
    }


async def _service(scope: Scope, receive: Receive, send: Send) -> None:
    leaf = scope["path"].rsplit("/", 1)[-1]
    request_id = _header(scope, b"x-request-id")
    _requests.append({"method": scope["method"], "path": scope["path"], "request_id": request_id})
    if leaf == "_sse":
        await _sse(scope, receive, send)
        return
    if leaf == "_slow":
        await _slow(scope, receive, send)
        return
    body = await _read_body(receive)
    query = _query(scope)
    if leaf == "_status":
        code = int(query["code"])
        headers = (
            [(b"retry-after", query["retry_after"].encode())] if "retry_after" in query else []
        )
        problem = {"type": "about:blank", "title": "From upstream", "status": code}
        problem |= {"detail": f"{SERVICE_NAME} says {code}", "request_id": request_id}
        await _send_json(
            send,
            code,
            problem,
            content_type=b"application/problem+json",
            headers=[(b"cache-control", b"private, max-age=5"), *headers],
        )
    elif leaf == "_redirect":
        await send(
            {
                "type": "http.response.start",
                "status": 307,
                "headers": [(b"location", query["location"].encode()), (b"content-length", b"0")],
            }
        )
        await send({"type": "http.response.body", "body": b""})
    elif leaf == "_small":
        await _send_json(send, 200, {"ok": True})
    else:
        # Like a service: it echoes the request id, and sets headers the gateway must replace.
        headers = [
            (b"x-request-id", (request_id or "none").encode()),
            (b"x-powered-by", b"stub-framework/1.0"),
            (b"x-frame-options", b"SAMEORIGIN"),
            (b"x-stub-service", SERVICE_NAME.encode()),
            # CORS is the gateway's alone: it hides a service's own.
            (b"access-control-allow-origin", b"*"),
            (b"access-control-allow-credentials", b"true"),
        ]
        await _send_json(send, 200, _echo_payload(scope, body), headers=headers)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI entry point."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
    elif scope["path"].startswith("/__stub__/"):
        await _control(scope, receive, send)
    else:
        await _service(scope, receive, send)
