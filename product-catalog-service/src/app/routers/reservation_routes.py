"""Stock reservations: internal endpoints for service tokens (never routed by the gateway).

Each route runs its manager call in one transaction of its own (``unit_of_work(engine)``),
committed before the answer is sent, as the request's ``DbConnection`` would; these hot internal
routes skip that yield dependency because its cancel scope costs a noticeable share of the CPU
of a reservation, and their work is one short transaction either way.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from common_libs.problems import problem_responses
from fastapi import APIRouter, Depends, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.session import unit_of_work
from app.dependencies import ReservationTtl, ServicePrincipal
from app.models.reservation_models import Reservation, ReservationCreate
from app.services import reservation_manager

router = APIRouter(prefix="/inventory/reservations", tags=["inventory (internal)"])

# Only the token check reaches another service from these routes.
_PROBLEMS = {503: "The token issuer's keys cannot be fetched right now (`Retry-After`)."}
_SETTLE = problem_responses(401, 403, 404, 422, 503, descriptions=_PROBLEMS)


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
            400,
            401,
            403,
            409,
            422,
            503,
            descriptions={
                **_PROBLEMS,
                409: "Not enough stock (`product_id` names the product), or the reservation "
                "id is taken by different items.",
                422: "Invalid request, or an unknown product (`product_id` names it).",
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
    """Hold all items or none: 201 when created, 200 when this id was already reserved."""
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
    responses={
        **_SETTLE,
        **problem_responses(409, descriptions={409: "The reservation was released or expired."}),
    },
)
async def commit_reservation(
    reservation_id: UUID, engine: Engine, _: ServicePrincipal
) -> Reservation:
    """Held stock becomes sold (idempotent)."""
    async with unit_of_work(engine) as connection:
        return await reservation_manager.commit_reservation(
            connection=connection, reservation_id=reservation_id
        )


@router.post("/{reservation_id}/release", response_model=Reservation, responses=_SETTLE)
async def release_reservation(
    reservation_id: UUID, engine: Engine, _: ServicePrincipal
) -> Reservation:
    """Held or committed stock returns (idempotent)."""
    async with unit_of_work(engine) as connection:
        return await reservation_manager.release_reservation(
            connection=connection, reservation_id=reservation_id
        )
