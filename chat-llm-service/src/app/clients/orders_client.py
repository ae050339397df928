"""A typed client for order-processing-service's public order reads (``GET /orders``,
``GET /orders/{id}``), for the assistant's order tools.

Every call carries the caller's own access token, forwarded as it came, never a service token:
the orders service then shows the assistant exactly what it shows the caller (their own orders;
someone else's answers ``404`` like a missing one). The token is a credential: no message of
this module's errors ever contains it.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from app.models.order_models import ORDER_STATUSES, OrderPage, OrderView

__all__ = ["MAX_LIMIT", "OrderNotFound", "OrdersClient", "OrdersUnavailable"]

MAX_LIMIT = 100
"""The largest page ``GET /orders`` gives (API.md: ``limit`` 1..100)."""

_SERVICE = "order-processing-service"
_M = TypeVar("_M", bound=BaseModel)


class OrdersUnavailable(Exception):
    """The orders service did not answer in time, could not be reached, failed (5xx), refused the
    caller's token (401/403) or answered something that is not what its API promises."""


class OrderNotFound(Exception):
    """No such order for the caller: missing, someone else's (both ``404``) or a malformed id."""


class OrdersClient:
    """Read the caller's orders over the one long-lived HTTP client made in the lifespan."""

    def __init__(self, http: httpx.AsyncClient, *, deadline_seconds: float) -> None:
        self._http = http
        self._deadline = deadline_seconds

    async def list_orders(self, *, token: str, limit: int, status: str | None = None) -> OrderPage:
        """The first ``limit`` of the caller's orders, newest first, optionally of one status;
        raises OrdersUnavailable (ValueError for a limit or status the API does not take)."""
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be 1..{MAX_LIMIT}, not {limit}")
        params: dict[str, str | int] = {"limit": limit}
        if status is not None:
            if status not in ORDER_STATUSES:
                raise ValueError(f"status must be one of {', '.join(ORDER_STATUSES)}")
            params["status"] = status
        response = await self._get("/orders", token=token, params=params)
        return _parse(OrderPage, response)

    async def get_order(self, *, token: str, order_id: str) -> OrderView:
        """One of the caller's orders; raises OrderNotFound or OrdersUnavailable."""
        # The id may come from the model's tool call: it must stay one path segment, so that it
        # can only ever name an order (never another path of the API, with the caller's token).
        if order_id in ("", ".", ".."):
            raise OrderNotFound("not an order id")
        response = await self._get(f"/orders/{quote(order_id, safe='')}", token=token)
        if response.status_code in (404, 422):
            raise OrderNotFound(f"{_SERVICE} answered {response.status_code}")
        return _parse(OrderView, response)

    async def _get(
        self, path: str, *, token: str, params: dict[str, str | int] | None = None
    ) -> httpx.Response:
        """``GET path`` with the caller's token within the deadline; a 401, 403 or 5xx raises
        OrdersUnavailable, any other answer is returned."""
        headers = {"Authorization": f"Bearer {token}"}
        try:
            # A hard deadline on top of the client's per-read timeouts: an orders service that
            # trickles its answer fails the tool call instead of holding the chat turn.
            async with asyncio.timeout(self._deadline):
                response = await self._http.get(path, params=params, headers=headers)
        except TimeoutError:
            raise OrdersUnavailable(
                f"{_SERVICE} did not answer within {self._deadline:g} s"
            ) from None
        except httpx.HTTPError as exc:
            # The exception's own text names the URL at most, never the request's headers.
            raise OrdersUnavailable(f"{_SERVICE} unreachable: {type(exc).__name__}") from exc
        if response.status_code in (401, 403):
            raise OrdersUnavailable(
                f"{_SERVICE} refused the caller's token ({response.status_code})"
            )
        if response.status_code >= 500:
            raise OrdersUnavailable(f"{_SERVICE} failed ({response.status_code})")
        return response


def _parse(model: type[_M], response: httpx.Response) -> _M:
    """The body of a 200 answer as ``model``; anything else raises OrdersUnavailable."""
    if response.status_code != 200:
        raise OrdersUnavailable(f"{_SERVICE} answered {response.status_code}")
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        # Only where and what, never the input: the body holds the caller's personal data.
        first = exc.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise OrdersUnavailable(
            f"{_SERVICE} answered an unparseable body ({exc.error_count()} errors, "
            f"first at {where}: {first['type']})"
        ) from None
