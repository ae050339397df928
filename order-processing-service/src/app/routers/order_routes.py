"""``/orders``: place, read, list, cancel, and the admin's status moves."""

from __future__ import annotations

import uuid
from typing import Annotated

from common_libs.pagination import Page, PageQuery
from common_libs.problems import problem_responses
from common_libs.ratelimit import rate_limit_responses
from fastapi import APIRouter, Header, Query

from app.dependencies import (
    AdminPrincipal,
    CurrentPrincipal,
    DbConnection,
    OrderingPrincipal,
    Settlement,
)
from app.models.order_models import OrderCreate, OrderOut, OrderStatus, StatusChange
from app.services import order_manager

router = APIRouter(prefix="/orders", tags=["orders"])

# What this service's 404 and 503 mean, where a route says nothing more precise.
_PROBLEMS = {
    404: "No such order (or it belongs to someone else).",
    503: "A dependency (the token issuer's keys, the catalog) is unavailable (`Retry-After`).",
}

# 1..255 printable ASCII characters, no surrounding spaces (HTTP would strip them anyway).
_KEY_PATTERN = r"^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$"

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=_KEY_PATTERN,
        description="Required. The same key and body again returns the first answer.",
    ),
]


@router.post(
    "",
    status_code=201,
    summary="Place an order",
    responses=rate_limit_responses(
        problem_responses(
            400,
            401,
            403,
            409,
            422,
            503,
            descriptions={
                **_PROBLEMS,
                400: "The Idempotency-Key header is missing, or the body cannot be parsed.",
                403: "Service tokens may not place orders.",
                409: "Not enough stock (`product_id` names it), or the first request with this "
                "Idempotency-Key is still in flight (`Retry-After`).",
                422: "Invalid body, an unknown product (`product_id`), products in different "
                "currencies, or this Idempotency-Key was used with a different body.",
                503: "The catalog is unreachable or slower than the deadline; nothing was "
                "reserved.",
            },
        ),
        201,
        description="This user placed too many orders in the current window (by default 10 "
        "per 60 s, whatever the client's address); `Retry-After` says when it ends.",
    ),
)
async def place_order(
    body: OrderCreate,
    principal: OrderingPrincipal,
    settlement: Settlement,
    idempotency_key: IdempotencyKeyHeader = None,
) -> OrderOut:
    """Reserve the items at the catalog and confirm the order with the catalog's prices."""
    return await order_manager.place_order(
        settlement=settlement,
        user_id=principal.subject,
        idempotency_key=idempotency_key,
        request=body,
    )


@router.get(
    "",
    summary="List orders",
    responses=problem_responses(401, 422, 503, descriptions=_PROBLEMS),
)
async def list_orders(
    principal: CurrentPrincipal,
    connection: DbConnection,
    page: PageQuery,
    status: Annotated[OrderStatus | None, Query(description="Only orders in this status.")] = None,
) -> Page[OrderOut]:
    """The caller's orders, newest first (an admin's: every order)."""
    return await order_manager.list_orders(
        connection=connection, principal=principal, status=status, page=page
    )


@router.get(
    "/{order_id}",
    summary="Get an order",
    responses=problem_responses(401, 404, 422, 503, descriptions=_PROBLEMS),
)
async def get_order(
    order_id: uuid.UUID, principal: CurrentPrincipal, connection: DbConnection
) -> OrderOut:
    """One order; someone else's answers 404 like a missing one."""
    return await order_manager.get_order(
        connection=connection, principal=principal, order_id=order_id
    )


@router.post(
    "/{order_id}/cancel",
    summary="Cancel an order",
    responses=problem_responses(
        401,
        404,
        409,
        422,
        503,
        descriptions={**_PROBLEMS, 409: "Only a confirmed order can be cancelled."},
    ),
)
async def cancel_order(
    order_id: uuid.UUID, principal: CurrentPrincipal, settlement: Settlement
) -> OrderOut:
    """Cancel a confirmed order (owner or admin); its stock returns to the catalog."""
    return await order_manager.cancel_order(
        settlement=settlement, principal=principal, order_id=order_id
    )


@router.patch(
    "/{order_id}/status",
    summary="Move an order along (admin)",
    responses=problem_responses(
        400,
        401,
        403,
        404,
        409,
        422,
        503,
        descriptions={
            **_PROBLEMS,
            400: "The body cannot be parsed.",
            409: "Only confirmed -> shipped -> delivered is allowed.",
        },
    ),
)
async def change_status(
    order_id: uuid.UUID, body: StatusChange, principal: AdminPrincipal, connection: DbConnection
) -> OrderOut:
    """Admins move orders ``confirmed -> shipped -> delivered``."""
    return await order_manager.change_status(
        connection=connection, order_id=order_id, status=body.status
    )
