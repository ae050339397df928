"""Domain errors: each carries its HTTP status and problem type; common-libs renders them as
problem+json.

This service's own types are ``urn:fleet:orders:<name>`` (README, "Problem types"). What means a
shared thing answers the shared type: the Idempotency-Key trio is common-libs' own
(``urn:fleet:common:idempotency-key-*``), and an unavailable catalog is
``urn:fleet:common:service-unavailable``.
"""

from __future__ import annotations

import uuid
from typing import Any

from common_libs.errors import (
    Conflict,
    IdempotencyKeyInFlight,
    IdempotencyKeyMissing,
    IdempotencyKeyReused,
    NotFound,
    ProblemError,
    ServiceUnavailable,
    UnprocessableContent,
)

__all__ = [
    "CatalogUnavailable",
    "IdempotencyKeyInFlight",
    "IdempotencyKeyMissing",
    "IdempotencyKeyReused",
    "MixedCurrencies",
    "OrderNotFound",
    "OrderRefused",
    "OrderStateConflict",
    "OutOfStock",
    "ProviderStateUnmet",
    "UnknownProduct",
    "UnknownProviderState",
    "problem_from_stored",
    "stored_problem",
]

_TYPE = "urn:fleet:orders:"


class OrderNotFound(NotFound):
    """No such order, or it belongs to someone else (both answer alike)."""

    type = _TYPE + "order-not-found"
    title = "Order Not Found"

    def __init__(self) -> None:
        super().__init__("No such order.")


class OrderStateConflict(Conflict):
    """The order's status does not allow this move: only a confirmed order can be cancelled, and
    an admin moves orders only confirmed -> shipped -> delivered."""

    type = _TYPE + "order-state-conflict"
    title = "Order State Conflict"


class CatalogUnavailable(ServiceUnavailable):
    """The catalog is down or slower than the deadline; nothing stays reserved.

    It keeps the shared ``urn:fleet:common:service-unavailable``: what a client does is the same
    as for any other 503 of this service (retry after ``Retry-After`` with the same
    Idempotency-Key, which is safe), and which dependency failed is the service's business (the
    ``detail`` says it for a human).
    """

    def __init__(self, *, retry_after: int) -> None:
        super().__init__(
            "The product catalog is unavailable right now; no order was placed. Retry later.",
            retry_after=retry_after,
        )


class OrderRefused(ProblemError):
    """A final refusal of an order: stored with its key and replayed for the same request."""


class OutOfStock(OrderRefused, Conflict):
    """Not enough stock of a product for the order (``product_id`` names it when known); nothing
    was reserved."""

    type = _TYPE + "out-of-stock"
    title = "Out of Stock"

    @classmethod
    def for_product(cls, product_id: uuid.UUID | None) -> OutOfStock:
        """The refusal naming ``product_id`` (when the catalog named it)."""
        if product_id is None:
            return cls("Not enough stock for one of the products.")
        return cls(
            f"Not enough stock for product {product_id}.", extra={"product_id": str(product_id)}
        )


class UnknownProduct(OrderRefused, UnprocessableContent):
    """A product of the order does not exist (``product_id`` names it when known)."""

    type = _TYPE + "unknown-product"
    title = "Unknown Product"

    @classmethod
    def for_product(cls, product_id: uuid.UUID | None) -> UnknownProduct:
        """The refusal naming ``product_id`` (when the catalog named it)."""
        if product_id is None:
            return cls("One of the products does not exist.")
        return cls(f"Unknown product {product_id}.", extra={"product_id": str(product_id)})


class MixedCurrencies(OrderRefused, UnprocessableContent):
    """The products are priced in different currencies; one order has one currency: order them
    separately."""

    type = _TYPE + "mixed-currencies"
    title = "Mixed Currencies"

    @classmethod
    def for_order(cls) -> MixedCurrencies:
        """The refusal of an order whose products have different currencies."""
        return cls("The products are priced in different currencies; order them separately.")


class UnknownProviderState(UnprocessableContent):
    """The pact verifier asked for a provider state this service does not know (contract tests)."""

    type = _TYPE + "unknown-provider-state"

    def __init__(self, state: str, *, known: list[str]) -> None:
        super().__init__(f"Unknown provider state {state!r}.", extra={"known_states": known})


class ProviderStateUnmet(Conflict):
    """A provider state cannot be set up (contract tests): the interaction would not be fair."""

    type = _TYPE + "provider-state-unmet"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)


_REPLAYABLE: dict[str, type[OrderRefused]] = {
    cls.type: cls for cls in (OutOfStock, UnknownProduct, MixedCurrencies)
}
_PROBLEM_FIELDS = ("type", "title", "status", "detail")


def stored_problem(error: ProblemError) -> dict[str, Any]:
    """The problem body to keep with the idempotency key (without the request id)."""
    return {
        "type": error.type,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        **error.extra,
    }


def problem_from_stored(body: dict[str, Any]) -> ProblemError:
    """Rebuild the refusal a stored problem body describes, to answer a replay."""
    cls = _REPLAYABLE[str(body["type"])]
    extra = {name: value for name, value in body.items() if name not in _PROBLEM_FIELDS}
    return cls(str(body["detail"]), extra=extra)
