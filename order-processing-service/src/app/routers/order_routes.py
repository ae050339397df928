"""``/orders``: place, read, list, cancel, and the admin's status moves."""

from __future__ import annotations

import uuid
from typing import Annotated

from common_libs.errors import IdempotencyKeyInFlight, IdempotencyKeyMissing, IdempotencyKeyReused
from common_libs.pagination import Page, PageQuery
from common_libs.problem_types import (
    AUTHENTICATION_REQUIRED,
    INSUFFICIENT_SCOPE,
    INVALID_CURSOR,
    INVALID_TOKEN,
    MALFORMED_REQUEST,
    SERVICE_UNAVAILABLE,
    TOKEN_EXPIRED,
    VALIDATION_FAILED,
)
from common_libs.problems import problem_responses
from common_libs.ratelimit import rate_limit_responses
from fastapi import APIRouter, Header, Query
from pydantic import StringConstraints, TypeAdapter

from app.dependencies import (
    AdminPrincipal,
    CurrentPrincipal,
    DbConnection,
    OrderingPrincipal,
    ReadEngine,
    Settlement,
)
from app.models.order_models import OrderCreate, OrderOut, OrderStatus, StatusChange
from app.services import order_manager
from app.services.errors import (
    MixedCurrencies,
    OrderNotFound,
    OrderStateConflict,
    OutOfStock,
    UnknownProduct,
)

router = APIRouter(prefix="/orders", tags=["orders"])

# What each status of these routes may answer, by problem type (README, "Problem types").
_AUTHENTICATED = (AUTHENTICATION_REQUIRED, INVALID_TOKEN, TOKEN_EXPIRED)
# The token issuer's keys (every authenticated route) or the database (every route) unavailable.
_UNAVAILABLE = (SERVICE_UNAVAILABLE,)
_READ = (*_AUTHENTICATED, VALIDATION_FAILED, *_UNAVAILABLE)

# What this service's 404 and 503 mean, where a route says nothing more precise.
_PROBLEMS = {
    404: "No such order (or it belongs to someone else).",
    503: "A dependency (the database, the token issuer's keys) is unavailable (`Retry-After`).",
}

# 1..255 printable ASCII characters, no surrounding spaces (HTTP would strip them anyway).
_KEY_PATTERN = r"^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$"
_KEY_MIN_LENGTH, _KEY_MAX_LENGTH = 1, 255
_KEY_DESCRIPTION = (
    "Required (missing: `400` `urn:fleet:common:idempotency-key-missing`). The same key and "
    "body again returns the first answer."
)

# FastAPI validates a key that is present (a malformed one is a 422 like any invalid input); the
# manager answers a missing one with IdempotencyKeyMissing (400). Declared required, the header
# would be refused by FastAPI with its own 422 instead, so it stays optional here and out of
# FastAPI's document, and the operation documents it as required (_IDEMPOTENCY_KEY_PARAMETER).
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=_KEY_MIN_LENGTH,
        max_length=_KEY_MAX_LENGTH,
        pattern=_KEY_PATTERN,
        include_in_schema=False,
    ),
]
_IDEMPOTENCY_KEY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "description": _KEY_DESCRIPTION,
    "schema": TypeAdapter(
        Annotated[
            str,
            StringConstraints(
                min_length=_KEY_MIN_LENGTH, max_length=_KEY_MAX_LENGTH, pattern=_KEY_PATTERN
            ),
        ]
    ).json_schema(),
}


@router.post(
    "",
    status_code=201,
    summary="Place an order",
    openapi_extra={"parameters": [_IDEMPOTENCY_KEY_PARAMETER]},
    responses=rate_limit_responses(
        problem_responses(
            MALFORMED_REQUEST,
            IdempotencyKeyMissing,
            *_AUTHENTICATED,
            INSUFFICIENT_SCOPE,
            OutOfStock,
            IdempotencyKeyInFlight,
            VALIDATION_FAILED,
            UnknownProduct,
            MixedCurrencies,
            IdempotencyKeyReused,
            *_UNAVAILABLE,
            descriptions={
                **_PROBLEMS,
                400: "The Idempotency-Key header is missing, or the body cannot be read.",
                403: "Service tokens may not place orders.",
                409: "Not enough stock (`product_id` names it), or the first request with this "
                "Idempotency-Key is still in flight (`Retry-After`).",
                422: "Invalid body or Idempotency-Key, an unknown product (`product_id`), "
                "products in different currencies, or this Idempotency-Key was used with a "
                "different body.",
                503: "The catalog is unreachable or slower than the deadline (nothing was "
                "reserved), or the database or the token issuer's keys are unavailable "
                "(`Retry-After`).",
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
    responses=problem_responses(
        *_READ,
        INVALID_CURSOR,
        descriptions={
            **_PROBLEMS,
            422: "An unknown `status`, a `limit` out of 1..100, or a `cursor` not from a "
            "previous page.",
        },
    ),
)
async def list_orders(
    principal: CurrentPrincipal,
    engine: ReadEngine,
    page: PageQuery,
    status: Annotated[OrderStatus | None, Query(description="Only orders in this status.")] = None,
) -> Page[OrderOut]:
    """The caller's orders, newest first (an admin's: every order)."""
    return await order_manager.list_orders(
        engine=engine, principal=principal, status=status, page=page
    )


@router.get(
    "/{order_id}",
    summary="Get an order",
    responses=problem_responses(*_READ, OrderNotFound, descriptions=_PROBLEMS),
)
async def get_order(
    order_id: uuid.UUID, principal: CurrentPrincipal, engine: ReadEngine
) -> OrderOut:
    """One order; someone else's answers 404 like a missing one."""
    return await order_manager.get_order(engine=engine, principal=principal, order_id=order_id)


@router.post(
    "/{order_id}/cancel",
    summary="Cancel an order",
    responses=problem_responses(
        *_READ,
        OrderNotFound,
        OrderStateConflict,
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
        MALFORMED_REQUEST,
        *_READ,
        INSUFFICIENT_SCOPE,
        OrderNotFound,
        OrderStateConflict,
        descriptions={
            **_PROBLEMS,
            400: "The body cannot be read.",
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
