"""Domain errors: each carries its HTTP status and problem type (common-libs renders them as
problem+json).

This service's own types are ``urn:fleet:product-catalog:<name>`` (README, "Problem types"); a
``ttl_seconds`` outside the configured bounds is the shared ``urn:fleet:common:validation-failed``,
like any other invalid field.
"""

from __future__ import annotations

from uuid import UUID

from common_libs.errors import Conflict, NotFound, UnprocessableContent
from common_libs.problem_types import VALIDATION_FAILED

__all__ = [
    "DuplicateSku",
    "OutOfStock",
    "ProductHasHeldStock",
    "ProductNotFound",
    "ProviderStateUnmet",
    "ReservationMismatch",
    "ReservationNotFound",
    "ReservationNotHeld",
    "StockBelowHeld",
    "TtlOutOfBounds",
    "UnknownProduct",
    "UnknownProviderState",
]

_TYPE = "urn:fleet:product-catalog:"


class ProductNotFound(NotFound):
    """No live product has this id."""

    type = _TYPE + "product-not-found"
    title = "Product Not Found"

    def __init__(self, product_id: UUID) -> None:
        super().__init__(f"Product {product_id} does not exist.")


class DuplicateSku(Conflict):
    """Another live product already has this SKU (``sku`` names it)."""

    type = _TYPE + "duplicate-sku"
    title = "Duplicate SKU"

    def __init__(self, sku: str) -> None:
        super().__init__(f"A product with SKU {sku!r} already exists.", extra={"sku": sku})


class StockBelowHeld(Conflict):
    """Stock may not be set below what open reservations hold (``held`` says how much)."""

    type = _TYPE + "stock-below-held"
    title = "Stock Below Held"

    def __init__(self, product_id: UUID, *, held: int) -> None:
        super().__init__(
            f"Stock of product {product_id} cannot go below the {held} held by reservations.",
            extra={"product_id": str(product_id), "held": held},
        )


class ProductHasHeldStock(Conflict):
    """A product cannot be deleted while reservations hold stock of it (``held`` says how much)."""

    type = _TYPE + "product-has-held-stock"
    title = "Product Has Held Stock"

    def __init__(self, product_id: UUID, *, held: int) -> None:
        super().__init__(
            f"Product {product_id} has {held} held by open reservations; "
            "commit or release them first.",
            extra={"product_id": str(product_id), "held": held},
        )


class UnknownProduct(UnprocessableContent):
    """A reservation names a product that does not exist (``product_id`` names it, ``errors``
    says where)."""

    type = _TYPE + "unknown-product"
    title = "Unknown Product"

    def __init__(self, product_id: UUID, *, index: int) -> None:
        super().__init__(
            f"Product {product_id} does not exist.",
            extra={
                "product_id": str(product_id),
                "errors": [
                    {
                        "loc": ["body", "items", index, "product_id"],
                        "msg": "Unknown product",
                        "type": "unknown_product",
                    }
                ],
            },
        )


class OutOfStock(Conflict):
    """Not enough stock of a product to hold the quantity asked for (``product_id``,
    ``requested``, ``available``); nothing was held."""

    type = _TYPE + "out-of-stock"
    title = "Out of Stock"

    def __init__(self, product_id: UUID, *, requested: int, available: int) -> None:
        super().__init__(
            f"Not enough stock of product {product_id}: {requested} requested, "
            f"{available} available.",
            extra={"product_id": str(product_id), "requested": requested, "available": available},
        )


class TtlOutOfBounds(UnprocessableContent):
    """``ttl_seconds`` is outside the bounds this service is configured with: an invalid field,
    answered as validation answers one."""

    problem_type = VALIDATION_FAILED

    def __init__(self, *, minimum: int, maximum: int) -> None:
        super().__init__(
            f"ttl_seconds must be between {minimum} and {maximum}.",
            extra={
                "errors": [
                    {
                        "loc": ["body", "ttl_seconds"],
                        "msg": f"Must be between {minimum} and {maximum}",
                        "type": "ttl_out_of_bounds",
                    }
                ]
            },
        )


class ReservationNotFound(NotFound):
    """No reservation has this id."""

    type = _TYPE + "reservation-not-found"
    title = "Reservation Not Found"

    def __init__(self, reservation_id: UUID) -> None:
        super().__init__(f"Reservation {reservation_id} does not exist.")


class ReservationMismatch(Conflict):
    """The reservation id is taken by a reservation of different items."""

    type = _TYPE + "reservation-mismatch"
    title = "Reservation Mismatch"

    def __init__(self, reservation_id: UUID) -> None:
        super().__init__(
            f"Reservation {reservation_id} already exists with different items.",
            extra={"reservation_id": str(reservation_id)},
        )


class ReservationNotHeld(Conflict):
    """A reservation that was released (or has expired) cannot be committed."""

    type = _TYPE + "reservation-not-held"
    title = "Reservation Not Held"

    def __init__(self, reservation_id: UUID, *, status: str) -> None:
        super().__init__(
            f"Reservation {reservation_id} is {status} and can no longer be committed.",
            extra={"reservation_id": str(reservation_id), "status": status},
        )


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
