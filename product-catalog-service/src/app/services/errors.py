"""Domain errors: each carries its HTTP status (common-libs renders them as problem+json)."""

from __future__ import annotations

from uuid import UUID

from common_libs.errors import Conflict, NotFound, UnprocessableContent

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

    def __init__(self, product_id: UUID) -> None:
        super().__init__(f"Product {product_id} does not exist.")


class DuplicateSku(Conflict):
    """Another live product already has this SKU."""

    type = _TYPE + "duplicate-sku"

    def __init__(self, sku: str) -> None:
        super().__init__(f"A product with SKU {sku!r} already exists.", extra={"sku": sku})


class StockBelowHeld(Conflict):
    """Stock may not be set below what open reservations hold."""

    type = _TYPE + "stock-below-held"

    def __init__(self, product_id: UUID, *, held: int) -> None:
        super().__init__(
            f"Stock of product {product_id} cannot go below the {held} held by reservations.",
            extra={"product_id": str(product_id), "held": held},
        )


class ProductHasHeldStock(Conflict):
    """A product cannot be deleted while reservations hold stock of it."""

    type = _TYPE + "product-has-held-stock"

    def __init__(self, product_id: UUID, *, held: int) -> None:
        super().__init__(
            f"Product {product_id} has {held} held by open reservations; "
            "commit or release them first.",
            extra={"product_id": str(product_id), "held": held},
        )


class UnknownProduct(UnprocessableContent):
    """A reservation names a product that does not exist."""

    type = _TYPE + "unknown-product"

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
    """Not enough stock of a product to hold the quantity asked for."""

    type = _TYPE + "out-of-stock"

    def __init__(self, product_id: UUID, *, requested: int, available: int) -> None:
        super().__init__(
            f"Not enough stock of product {product_id}: {requested} requested, "
            f"{available} available.",
            extra={"product_id": str(product_id), "requested": requested, "available": available},
        )


class TtlOutOfBounds(UnprocessableContent):
    """``ttl_seconds`` is outside the bounds this service is configured with."""

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

    def __init__(self, reservation_id: UUID) -> None:
        super().__init__(f"Reservation {reservation_id} does not exist.")


class ReservationMismatch(Conflict):
    """The reservation id is taken by a reservation of different items."""

    type = _TYPE + "reservation-mismatch"

    def __init__(self, reservation_id: UUID) -> None:
        super().__init__(
            f"Reservation {reservation_id} already exists with different items.",
            extra={"reservation_id": str(reservation_id)},
        )


class ReservationNotHeld(Conflict):
    """A reservation that was released (or has expired) cannot be committed."""

    type = _TYPE + "reservation-not-held"

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
