"""The events the catalog publishes (API.md, "Events"): declared here, and only here.

Each is written in the transaction of the change it describes (``common_libs.events``' outbox)
and published to the ``CATALOG`` stream by the relay the lifespan starts. ``data`` of created
and updated is the product exactly as ``GET /products/{id}`` returns it; of deleted, its id.
``python -m app.events > asyncapi.json`` (``make asyncapi``) writes the AsyncAPI document.
"""

from __future__ import annotations

from importlib.metadata import version

from common_libs.events import CATALOG, DeletedData, EventSource
from common_libs.events.asyncapi import asyncapi_json

from app.config import SERVICE_NAME
from app.models.product_models import Product

__all__ = [
    "COALESCED",
    "EVENTS",
    "PRODUCT_CREATED",
    "PRODUCT_DELETED",
    "PRODUCT_UPDATED",
    "asyncapi",
]

EVENTS = EventSource(SERVICE_NAME, CATALOG)
PRODUCT_CREATED = EVENTS.event("catalog.product.created", Product, "A product was created.")
PRODUCT_UPDATED = EVENTS.event(
    "catalog.product.updated",
    Product,
    "A product changed: an admin's edit, or its available stock (a reservation held, released "
    "or expired). Carries the product as it is after the change.",
)
PRODUCT_DELETED = EVENTS.event("catalog.product.deleted", DeletedData, "A product was deleted.")
# The relay leaves out an update that a later event of the same product in its pass supersedes:
# a burst of orders for one product is a burst of its stock's updates, and each carries the whole
# product (API.md lets a producer coalesce them into the latest).
COALESCED = (PRODUCT_UPDATED.name,)


def asyncapi() -> str:
    """The service's AsyncAPI document, as ``asyncapi.json`` holds it."""
    return asyncapi_json(
        EVENTS,
        title=f"{SERVICE_NAME} events",
        version=version(SERVICE_NAME),
        description="Facts about the catalog's products, published to the CATALOG stream of "
        "NATS JetStream from a transactional outbox. `data` is the product as "
        "`GET /products/{id}` returns it (`{id}` for catalog.product.deleted); `version` "
        "increases strictly per product.",
    )


if __name__ == "__main__":  # pragma: no cover - ``make asyncapi``
    print(asyncapi(), end="")
