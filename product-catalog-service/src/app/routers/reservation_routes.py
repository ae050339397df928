"""Stock reservations: internal endpoints for service tokens (never routed by the gateway)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response, status

from app.dependencies import DbConnection, ReservationTtl, ServicePrincipal
from app.models.problem_models import problem_responses
from app.models.reservation_models import Reservation, ReservationCreate
from app.services import reservation_manager

router = APIRouter(prefix="/inventory/reservations", tags=["inventory (internal)"])

_SETTLE = problem_responses(401, 403, 404, 422, 503)


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
    connection: DbConnection,
    ttl: ReservationTtl,
    _: ServicePrincipal,
) -> Reservation:
    """Hold all items or none: 201 when created, 200 when this id was already reserved."""
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
    reservation_id: UUID, connection: DbConnection, _: ServicePrincipal
) -> Reservation:
    """Held stock becomes sold (idempotent)."""
    return await reservation_manager.commit_reservation(
        connection=connection, reservation_id=reservation_id
    )


@router.post("/{reservation_id}/release", response_model=Reservation, responses=_SETTLE)
async def release_reservation(
    reservation_id: UUID, connection: DbConnection, _: ServicePrincipal
) -> Reservation:
    """Held or committed stock returns (idempotent)."""
    return await reservation_manager.release_reservation(
        connection=connection, reservation_id=reservation_id
    )
