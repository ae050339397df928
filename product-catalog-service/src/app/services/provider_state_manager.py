"""Provider states for contract tests: the situations consumers' pacts start from, made real.

Mounted only when ``CATALOG_PROVIDER_STATES_ENABLED`` is set (never in production). Each state is
set up through this service's own managers in the request's transaction, and answers the ids it
made; the pact verifier puts them into the interaction's request (provider-state injection), so
every verification run starts from fresh rows and never depends on an earlier one.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import reservation_repository
from app.models.product_models import Product, ProductCreate
from app.models.provider_state_models import (
    NoProduct,
    NoReservation,
    ProductInStock,
    ProviderStateChange,
    ReservationHeld,
)
from app.models.reservation_models import ReservationCreate, ReservationItemRequest
from app.services import product_manager, reservation_manager
from app.services.errors import ProductNotFound, ProviderStateUnmet, UnknownProviderState
from app.services.reservation_manager import TtlPolicy

__all__ = ["STATES", "set_up_state"]

StateValues = dict[str, str]
_StateHandler = Callable[[AsyncConnection, TtlPolicy, dict[str, Any]], Awaitable[StateValues]]
_P = TypeVar("_P", bound=BaseModel)


def _parameters(model: type[_P], state: str, params: dict[str, Any]) -> _P:
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise ProviderStateUnmet(f"Invalid parameters for {state!r}: {exc.errors()}") from None


async def _create_product(connection: AsyncConnection, wanted: ProductInStock) -> Product:
    product = ProductCreate(
        sku=f"PACT-{uuid.uuid4().hex[:12]}",
        name=wanted.name,
        description=wanted.description,
        category="contract-tests",
        price=wanted.price,
        stock=wanted.stock,
    )
    return await product_manager.create_product(connection=connection, product=product)


async def _product_in_stock(
    connection: AsyncConnection, ttl: TtlPolicy, params: dict[str, Any]
) -> StateValues:
    wanted = _parameters(ProductInStock, "a product is in stock", params)
    product = await _create_product(connection, wanted)
    return {"product_id": str(product.id)}


async def _reservation_held(
    connection: AsyncConnection, ttl: TtlPolicy, params: dict[str, Any]
) -> StateValues:
    wanted = _parameters(ReservationHeld, "a reservation is held", params)
    product = await _create_product(connection, ProductInStock(stock=wanted.quantity))
    request = ReservationCreate(
        reservation_id=uuid.uuid4(),
        items=[ReservationItemRequest(product_id=product.id, quantity=wanted.quantity)],
    )
    reservation, _ = await reservation_manager.hold_reservation(
        connection=connection, request=request, ttl=ttl
    )
    return {"product_id": str(product.id), "reservation_id": str(reservation.reservation_id)}


async def _no_product(
    connection: AsyncConnection, ttl: TtlPolicy, params: dict[str, Any]
) -> StateValues:
    wanted = _parameters(NoProduct, "no product has the id", params)
    with suppress(ProductNotFound):
        await product_manager.delete_product(connection=connection, product_id=wanted.product_id)
    return {}


async def _no_reservation(
    connection: AsyncConnection, ttl: TtlPolicy, params: dict[str, Any]
) -> StateValues:
    wanted = _parameters(NoReservation, "no reservation has the id", params)
    found = await reservation_repository.fetch_reservation(
        connection, reservation_id=wanted.reservation_id
    )
    if found is not None:
        # Reservations are never deleted: the consumer must name an id nobody uses.
        raise ProviderStateUnmet(f"Reservation {wanted.reservation_id} exists.")
    return {}


async def _nothing(
    connection: AsyncConnection, ttl: TtlPolicy, params: dict[str, Any]
) -> StateValues:
    return {}


STATES: dict[str, _StateHandler] = {
    "": _nothing,
    "a product is in stock": _product_in_stock,
    "a reservation is held": _reservation_held,
    "no product has the id": _no_product,
    "no reservation has the id": _no_reservation,
}


async def set_up_state(
    *, connection: AsyncConnection, ttl: TtlPolicy, change: ProviderStateChange
) -> StateValues:
    """Make ``change.state`` true and return the values it made (teardowns change nothing)."""
    handler = STATES.get(change.state)
    if handler is None:
        raise UnknownProviderState(change.state, known=sorted(name for name in STATES if name))
    if change.action == "teardown":
        return {}
    return await handler(connection, ttl, change.params)
