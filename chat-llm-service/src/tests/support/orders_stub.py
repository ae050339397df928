"""A stub of order-processing-service's public order reads, for the assistant's order tools.

``GET /orders?limit=&status=&cursor=`` answers ``{items: [order...], next_cursor}`` with the
caller's orders (in the order they were given; the cursor is opaque) and ``GET /orders/{id}``
one of them, where an order is the API's ``{id, user_id, status, items: [{product_id, name,
unit_price, quantity, line_total}], total, currency, shipping_address, created_at, updated_at}``.
The caller is the ``sub`` of the bearer token's JWT payload (read, not verified: the stub checks
whose orders are asked for, the signature is the real service's business). As the API does, it
answers ``401`` without a readable token, ``404`` for another user's order exactly as for a
missing one, and ``422`` for an id that is not a UUID or a limit outside 1..100.

Tests set the orders and read the requests received (method, path, query, ``Authorization``
header) through ``/_stub/...``: ``/_stub/mode`` makes it fail (``error``: every read answers
``status``, 500 by default; ``bad_body``: 200 with a body that is not JSON; ``hang``: every read
waits until ``/_stub/release`` or ``/_stub/reset``). ``STUB_ORDERS`` (JSON) holds the orders it
starts with.

Run: ``python -m uvicorn tests.support.orders_stub:app --host 127.0.0.1 --port N``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

STUB: dict[str, Any] = {}
_released = asyncio.Event()
_PROBLEM = "application/problem+json"


def _reset(orders: list[dict[str, Any]] | None = None) -> None:
    STUB.update(orders=orders or [], requests=[], mode="ok", status=500)
    _released.clear()


_reset(json.loads(os.environ.get("STUB_ORDERS", "[]")))


def _problem(status: int, title: str) -> JSONResponse:
    return JSONResponse({"title": title, "status": status}, status_code=status, media_type=_PROBLEM)


def _caller(request: Request) -> str | None:
    """The ``sub`` of the bearer token, or None when there is no readable one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme != "Bearer" or token.count(".") != 2:
        return None
    payload = token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        return None
    subject = claims.get("sub") if isinstance(claims, dict) else None
    return subject if isinstance(subject, str) else None


async def _answer_or_fail(request: Request) -> Response | None:
    """Record the request; the failure the mode asks for, or None to answer normally."""
    STUB["requests"].append(
        {
            "method": request.method,
            "path": request.url.path,
            "query": dict(request.query_params),
            "authorization": request.headers.get("authorization"),
        }
    )
    mode = STUB["mode"]
    if mode == "hang":
        await _released.wait()
    if mode == "error":
        return _problem(STUB["status"], "Stub failure")
    if mode == "bad_body":
        return Response("<html>not the orders API</html>", media_type="text/html")
    if _caller(request) is None:
        return _problem(401, "Unauthorized")
    return None


async def list_orders(request: Request) -> Response:
    failure = await _answer_or_fail(request)
    if failure is not None:
        return failure
    caller, status = _caller(request), request.query_params.get("status")
    limit = int(request.query_params.get("limit", "20"))
    if not 1 <= limit <= 100:
        return _problem(422, "Unprocessable Content")
    cursor = request.query_params.get("cursor")
    mine = [
        order
        for order in STUB["orders"]
        if order["user_id"] == caller and (status is None or order["status"] == status)
    ]
    start = int(cursor.removeprefix("after-")) if cursor else 0
    end = start + limit
    next_cursor = f"after-{end}" if end < len(mine) else None
    return JSONResponse({"items": mine[start:end], "next_cursor": next_cursor})


async def get_order(request: Request) -> Response:
    failure = await _answer_or_fail(request)
    if failure is not None:
        return failure
    try:
        order_id = str(uuid.UUID(request.path_params["order_id"]))
    except ValueError:
        return _problem(422, "Unprocessable Content")
    caller = _caller(request)
    for order in STUB["orders"]:
        if order["id"] == order_id and order["user_id"] == caller:
            return JSONResponse(order)
    return _problem(404, "Not Found")


async def set_orders(request: Request) -> JSONResponse:
    STUB["orders"] = await request.json()
    return JSONResponse({"ok": True})


async def set_mode(request: Request) -> JSONResponse:
    body = await request.json()
    STUB["mode"] = body["mode"]
    STUB["status"] = body.get("status", 500)
    _released.clear()
    return JSONResponse({"ok": True})


async def release(request: Request) -> JSONResponse:
    _released.set()
    return JSONResponse({"ok": True})


async def get_requests(request: Request) -> JSONResponse:
    return JSONResponse({"requests": STUB["requests"]})


async def reset(request: Request) -> JSONResponse:
    _released.set()  # a request still held answers first
    _reset()
    return JSONResponse({"ok": True})


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        Route("/orders", list_orders),
        Route("/orders/{order_id}", get_order),
        Route("/_stub/orders", set_orders, methods=["PUT"]),
        Route("/_stub/mode", set_mode, methods=["PUT"]),
        Route("/_stub/release", release, methods=["POST"]),
        Route("/_stub/requests", get_requests),
        Route("/_stub/reset", reset, methods=["POST"]),
        Route("/health", health),
    ]
)
