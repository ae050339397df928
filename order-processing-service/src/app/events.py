"""The events this service publishes (stream ``ORDERS``), the one place they are declared, and the
one it consumes (``users.user.deleted`` on ``USERS``: :func:`user_erasure_consumer`).

An ``orders.order.<status>`` event is written when an order reaches that status, in the same
transaction as the change (:func:`write_order_event`); the outbox relay publishes it after the
commit. Its ``subject`` is the order's id, its ``data`` the order without its shipping address
(:class:`~app.models.order_models.OrderState`). The same declarations make the service's AsyncAPI
document (:func:`asyncapi`; ``make asyncapi`` writes it to ``asyncapi.json``).

When a user is deleted, the shipping address of each of their orders is replaced by
``ERASED_ADDRESS`` (:func:`erase_deleted_user`); the orders themselves stay, for accounting.
"""

from __future__ import annotations

from importlib.metadata import version

from common_libs.events import (
    ORDERS,
    USERS,
    AnyEvent,
    Broker,
    EventConsumer,
    EventSource,
    EventType,
    write_event,
)
from common_libs.events.asyncapi import asyncapi_json
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.config import SERVICE_NAME
from app.db.order_repository import OrderRecord, erase_shipping_addresses
from app.models.order_models import OrderState

__all__ = [
    "EVENTS",
    "ORDER_CANCELLED",
    "ORDER_CONFIRMED",
    "ORDER_DELIVERED",
    "ORDER_FAILED",
    "ORDER_SHIPPED",
    "USER_ERASURE",
    "asyncapi",
    "erase_deleted_user",
    "user_erasure_consumer",
    "write_order_event",
]

EVENTS = EventSource(SERVICE_NAME, ORDERS)
ORDER_CONFIRMED = EVENTS.event(
    "orders.order.confirmed",
    OrderState,
    "An order was confirmed: its stock is sold at the catalog and it carries the catalog's prices.",
)
ORDER_FAILED = EVENTS.event(
    "orders.order.failed",
    OrderState,
    "An order failed (the catalog refused it or did not answer); nothing of it was sold.",
)
ORDER_CANCELLED = EVENTS.event(
    "orders.order.cancelled",
    OrderState,
    "A confirmed order was cancelled by its owner or an admin; its stock goes back.",
)
ORDER_SHIPPED = EVENTS.event(
    "orders.order.shipped", OrderState, "An admin marked a confirmed order shipped."
)
ORDER_DELIVERED = EVENTS.event(
    "orders.order.delivered", OrderState, "An admin marked a shipped order delivered."
)

_BY_STATUS: dict[str, EventType] = {
    event.name.rsplit(".", 1)[1]: event
    for event in (ORDER_CONFIRMED, ORDER_FAILED, ORDER_CANCELLED, ORDER_SHIPPED, ORDER_DELIVERED)
}


async def write_order_event(connection: AsyncConnection, order: OrderRecord) -> None:
    """Write the event of the status ``order`` just reached, in the caller's transaction."""
    await write_event(connection, _BY_STATUS[order.status], order.id, OrderState.from_record(order))


USER_ERASURE = f"{SERVICE_NAME}-user-erasure"
USER_DELETED = "users.user.deleted"


async def erase_deleted_user(connection: AsyncConnection, event: AnyEvent) -> None:
    """Erase the shipping addresses of the deleted user's orders (the event's subject), in the
    consumer's transaction; harmless when they are already erased."""
    await erase_shipping_addresses(connection, user_id=event.subject)


def user_erasure_consumer(*, engine: AsyncEngine, broker: Broker) -> EventConsumer:
    """The durable consumer of ``users.user.deleted`` that erases a deleted user's addresses."""
    return EventConsumer(
        name=USER_ERASURE,
        stream=USERS,
        subject=USER_DELETED,
        engine=engine,
        broker=broker,
        handler=erase_deleted_user,
    )


def asyncapi() -> str:
    """The service's AsyncAPI document, as ``asyncapi.json`` holds it."""
    return asyncapi_json(
        EVENTS,
        title="order-processing-service events",
        version=version(SERVICE_NAME),
        description=(
            "What order-processing-service publishes on the ORDERS stream: one event each time "
            "an order reaches confirmed, failed, cancelled, shipped or delivered, written in the "
            "transaction of the change (transactional outbox). The subject is the order's id; "
            "the data is the order as GET /orders/{id} returns it, without its shipping address."
        ),
    )
