"""Provider states for contract tests: the situations consumers' pacts start from, made real.

Mounted only when ``ORDERS_PROVIDER_STATES_ENABLED`` is set (refused in production). An order
is made by the two statements of a placement, in the request's transaction: the key's claim
with the ``pending`` order, then its confirmation with its event, priced by the state's own
parameters instead of the catalog (which a contract test of this service does not run). The
answer carries the order's id; the pact verifier puts it into the interaction's request
(provider-state injection), so every verification run reads fresh rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import idempotency_repository, settlement_repository
from app.db.order_repository import PricedItem
from app.events import write_order_event
from app.models.order_models import OrderCreate, OrderItemIn, ShippingAddress
from app.models.provider_state_models import (
    AnotherCustomerHasOrder,
    CustomerHasOrder,
    ProviderStateChange,
)
from app.services import idempotency
from app.services.errors import ProviderStateUnmet, UnknownProviderState
from app.services.reservation import Pricing
from app.services.settlement import PendingOrder, confirmed_answer

__all__ = ["STATES", "set_up_state"]

StateValues = dict[str, str]
_StateHandler = Callable[[AsyncConnection, dict[str, Any]], Awaitable[StateValues]]
_P = TypeVar("_P", bound=BaseModel)

# The shortest time the API keeps a key (the state's key is never used again).
_KEY_TTL = timedelta(hours=24)
_ADDRESS = ShippingAddress(
    name="Contract Customer",
    line1="1 Pact Street",
    city="Testing",
    postal_code="00000",
    country="NL",
)


def _parameters(model: type[_P], state: str, params: dict[str, Any]) -> _P:
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise ProviderStateUnmet(f"Invalid parameters for {state!r}: {exc.errors()}") from None


async def _place_confirmed_order(
    connection: AsyncConnection, *, user_id: str, wanted: AnotherCustomerHasOrder
) -> uuid.UUID:
    """A ``confirmed`` order of ``user_id``: one line of a new product, at the wanted price."""
    product_id = uuid.uuid4()
    request = OrderCreate(
        items=[OrderItemIn(product_id=product_id, quantity=wanted.quantity)],
        shipping_address=_ADDRESS,
    )
    order = PendingOrder(
        id=uuid.uuid4(),
        user_id=user_id,
        shipping_address=request.shipping_address.model_dump(mode="json"),
        items=((product_id, wanted.quantity),),
    )
    claimed = await idempotency_repository.place_pending_order(
        connection,
        order_id=order.id,
        user_id=user_id,
        key=f"provider-state-{order.id}",
        request_hash=idempotency.request_hash(request=request),
        ttl=_KEY_TTL,
        shipping_address=order.shipping_address,
        items=order.items,
    )
    pricing = Pricing(
        currency="USD",
        total=wanted.unit_price * wanted.quantity,
        items=(PricedItem(product_id, wanted.name, wanted.unit_price),),
    )
    record = await settlement_repository.confirm_order(
        connection,
        order_id=order.id,
        currency=pricing.currency,
        total=pricing.total,
        priced_items=pricing.items,
        answer=confirmed_answer(order, pricing),
    )
    # A new key and a new id in this transaction: neither can be taken already.
    if not claimed or record is None:
        raise ProviderStateUnmet(f"Order {order.id} could not be placed and confirmed.")
    await write_order_event(connection, record)
    return record.id


async def _customer_has_order(connection: AsyncConnection, params: dict[str, Any]) -> StateValues:
    wanted = _parameters(CustomerHasOrder, "a customer has an order", params)
    order_id = await _place_confirmed_order(connection, user_id=wanted.user_id, wanted=wanted)
    return {"order_id": str(order_id)}


async def _another_customer_has_order(
    connection: AsyncConnection, params: dict[str, Any]
) -> StateValues:
    wanted = _parameters(AnotherCustomerHasOrder, "another customer has an order", params)
    # A user id no verification's token names: a new one every time.
    order_id = await _place_confirmed_order(connection, user_id=str(uuid.uuid4()), wanted=wanted)
    return {"order_id": str(order_id)}


async def _nothing(connection: AsyncConnection, params: dict[str, Any]) -> StateValues:
    return {}


STATES: dict[str, _StateHandler] = {
    "": _nothing,
    "a customer has an order": _customer_has_order,
    "another customer has an order": _another_customer_has_order,
}


async def set_up_state(*, connection: AsyncConnection, change: ProviderStateChange) -> StateValues:
    """Make ``change.state`` true and return the values it made (teardowns change nothing)."""
    handler = STATES.get(change.state)
    if handler is None:
        raise UnknownProviderState(change.state, known=sorted(name for name in STATES if name))
    if change.action == "teardown":
        return {}
    return await handler(connection, change.params)
