"""Stock reservations: internal endpoints for service tokens (never routed by the gateway).

Each route runs its manager call in one transaction of its own (``unit_of_work(engine)``),
committed before the answer is sent, as the request's ``DbConnection`` would; these hot internal
routes skip that yield dependency because its cancel scope costs a noticeable share of the CPU
of a reservation, and their work is one short transaction either way.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from common_libs.problem_types import (
    AUTHENTICATION_REQUIRED,
    INSUFFICIENT_SCOPE,
    INVALID_TOKEN,
    MALFORMED_REQUEST,
    SERVICE_UNAVAILABLE,
    TOKEN_EXPIRED,
    VALIDATION_FAILED,
)
from common_libs.problems import problem_responses
from fastapi import APIRouter, Depends, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.session import unit_of_work
from app.dependencies import ReservationTtl, ServicePrincipal
from app.models.reservation_models import Reservation, ReservationCreate
from app.services import reservation_manager
from app.services.errors import (
    OutOfStock,
    ReservationMismatch,
    ReservationNotFound,
    ReservationNotHeld,
    UnknownProduct,
)

router = APIRouter(prefix="/inventory/reservations", tags=["inventory (internal)"])

# What each status of these routes may answer, by problem type (README, "Problem types"): a
# service token (401, 403), valid input (422), the database and the token issuer's keys (503).
_SERVICE_CALL = (
    AUTHENTICATION_REQUIRED,
    INVALID_TOKEN,
    TOKEN_EXPIRED,
    INSUFFICIENT_SCOPE,
    VALIDATION_FAILED,
    SERVICE_UNAVAILABLE,
)
_PROBLEMS = {
    503: "The database or the token issuer's keys are unavailable right now (`Retry-After`).",
}


async def get_engine(request: Request) -> AsyncEngine:
    """The process's pool (made in the lifespan); each route opens its own transaction on it."""
    engine: AsyncEngine = request.app.state.engine
    return engine


Engine = Annotated[AsyncEngine, Depends(get_engine)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=Reservation,
    responses={
        200: {
            "description": "The same reservation id again: the existing reservation.",
            "model": Reservation,
        },
        **problem_responses(
            MALFORMED_REQUEST,
            *_SERVICE_CALL,
            OutOfStock,
            ReservationMismatch,
            ReservationNotHeld,
            UnknownProduct,
            descriptions={
                **_PROBLEMS,
                409: "Not enough stock (`product_id` names the product), the reservation id "
                "taken by different items, or (with `commit`) a hold of this id expired.",
                422: "Invalid request (a `ttl_seconds` outside the configured bounds too), or an "
                "unknown product (`product_id` names it).",
            },
        ),
    },
)
async def hold_reservation(
    request: ReservationCreate,
    response: Response,
    engine: Engine,
    ttl: ReservationTtl,
    _: ServicePrincipal,
) -> Reservation:
    """Hold all items or none (with ``commit``, sell them in the same step): 201 when created,
    200 when this id was already reserved."""
    async with unit_of_work(engine) as connection:
        reservation, created = await reservation_manager.hold_reservation(
            connection=connection, request=request, ttl=ttl
        )
    if not created:
        response.status_code = status.HTTP_200_OK
    return reservation


@router.post(
    "/{reservation_id}/commit",
    response_model=Reservation,
    responses=problem_responses(
        *_SERVICE_CALL,
        ReservationNotFound,
        ReservationNotHeld,
        descriptions={**_PROBLEMS, 409: "The reservation was released or expired."},
    ),
)
async def commit_reservation(
    reservation_id: UUID, engine: Engine, _: ServicePrincipal
) -> Reservation:
    """Held stock becomes sold (idempotent)."""
    async with unit_of_work(engine) as connection:
        return await reservation_manager.commit_reservation(
            connection=connection, reservation_id=reservation_id
        )


@router.post(
    "/{reservation_id}/release",
    response_model=Reservation,
    responses=problem_responses(*_SERVICE_CALL, ReservationNotFound, descriptions=_PROBLEMS),
)
async def release_reservation(
    reservation_id: UUID, engine: Engine, _: ServicePrincipal
) -> Reservation:
    """Held or committed stock returns (idempotent)."""
    async with unit_of_work(engine) as connection:
        return await reservation_manager.release_reservation(
            connection=connection, reservation_id=reservation_id
        )
