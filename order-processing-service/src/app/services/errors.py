"""Domain errors: each carries its HTTP status; common-libs renders them as problem+json."""

from __future__ import annotations

import uuid
from typing import Any

from common_libs.errors import (
    BadRequest,
    Conflict,
    NotFound,
    ProblemError,
    ServiceUnavailable,
    UnprocessableContent,
)

__all__ = [
    "CatalogUnavailable",
    "IdempotencyKeyMissing",
    "IdempotencyKeyReused",
    "MixedCurrencies",
    "OrderNotFound",
    "OrderRefused",
    "OrderStateConflict",
    "OutOfStock",
    "ProviderStateUnmet",
    "RequestInFlight",
    "UnknownProduct",
    "UnknownProviderState",
    "problem_from_stored",
    "stored_problem",
]


class OrderNotFound(NotFound):
    """No such order, or it belongs to someone else."""

    def __init__(self) -> None:
        super().__init__("No such order.")


class OrderStateConflict(Conflict):
    """The order's status does not allow this move."""


class IdempotencyKeyMissing(BadRequest):
    """``POST /orders`` needs an ``Idempotency-Key`` header."""

    def __init__(self) -> None:
        super().__init__("The Idempotency-Key header is required (1..255 characters).")


class IdempotencyKeyReused(UnprocessableContent):
    """The key was used before with a different body."""

    def __init__(self) -> None:
        super().__init__("This Idempotency-Key was already used with a different request body.")


class RequestInFlight(Conflict):
    """The first request with this key is still being processed."""

    def __init__(self) -> None:
        super().__init__(
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            headers={"Retry-After": "1"},
        )


class CatalogUnavailable(ServiceUnavailable):
    """The catalog is down or slower than the deadline; nothing stays reserved."""

    def __init__(self, *, retry_after: int) -> None:
        super().__init__(
            "The product catalog is unavailable right now; no order was placed. Retry later.",
            retry_after=retry_after,
        )


class OrderRefused(ProblemError):
    """A final refusal of an order: stored with its key and replayed for the same request."""


class OutOfStock(OrderRefused, Conflict):
    """Not enough stock for a product."""

    type = "urn:fleet:orders:out-of-stock"

    @classmethod
    def for_product(cls, product_id: uuid.UUID | None) -> OutOfStock:
        """The refusal naming ``product_id`` (when the catalog named it)."""
        if product_id is None:
            return cls("Not enough stock for one of the products.")
        return cls(
            f"Not enough stock for product {product_id}.", extra={"product_id": str(product_id)}
        )


class UnknownProduct(OrderRefused, UnprocessableContent):
    """A product of the order does not exist."""

    type = "urn:fleet:orders:unknown-product"

    @classmethod
    def for_product(cls, product_id: uuid.UUID | None) -> UnknownProduct:
        """The refusal naming ``product_id`` (when the catalog named it)."""
        if product_id is None:
            return cls("One of the products does not exist.")
        return cls(f"Unknown product {product_id}.", extra={"product_id": str(product_id)})


class MixedCurrencies(OrderRefused, UnprocessableContent):
    """The products are priced in different currencies; one order has one currency."""

    type = "urn:fleet:orders:mixed-currencies"

    @classmethod
    def for_order(cls) -> MixedCurrencies:
        """The refusal of an order whose products have different currencies."""
        return cls("The products are priced in different currencies; order them separately.")


class UnknownProviderState(UnprocessableContent):
    """The pact verifier asked for a provider state this service does not know (contract tests)."""

    type = "urn:fleet:orders:unknown-provider-state"

    def __init__(self, state: str, *, known: list[str]) -> None:
        super().__init__(f"Unknown provider state {state!r}.", extra={"known_states": known})


class ProviderStateUnmet(Conflict):
    """A provider state cannot be set up (contract tests): the interaction would not be fair."""

    type = "urn:fleet:orders:provider-state-unmet"

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
