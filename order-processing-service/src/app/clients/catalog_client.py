"""A typed client for product-catalog-service's internal reservation API (service token).

The saga reserves in the catalog's one-step form (hold and commit together, ``commit: true``)
and releases; the two-step form's ``/commit`` it no longer calls.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, TypeVar

import httpx
from common_libs.money import Currency, Money
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.clients.resilience import Deadline, TransientError, retry_within
from app.clients.service_token import ServiceCredentialsRefused, ServiceTokenProvider

__all__ = [
    "CatalogClient",
    "CatalogError",
    "CatalogUnavailable",
    "InsufficientStock",
    "Reservation",
    "ReservationRefused",
    "ReservationUnusable",
    "ReservedItem",
    "UnknownProduct",
]

T = TypeVar("T")


class CatalogError(Exception):
    """Base of everything the catalog client raises."""


class CatalogUnavailable(CatalogError):
    """The catalog did not give a usable answer in time (down, slow, erroring, misconfigured)."""


class ReservationRefused(CatalogError):
    """The catalog answered that it cannot hold these items (nothing was reserved)."""

    def __init__(self, detail: str, *, product_id: uuid.UUID | None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.product_id = product_id


class InsufficientStock(ReservationRefused):
    """Not enough stock for one of the products (the catalog's 409)."""


class UnknownProduct(ReservationRefused):
    """One of the products does not exist (the catalog's 422)."""


class ReservationUnusable(CatalogError):
    """The reservation exists but cannot be committed (released, expired, or conflicting)."""


class ReservedItem(BaseModel):
    """One held line, priced by the catalog."""

    model_config = ConfigDict(extra="ignore")

    product_id: uuid.UUID
    name: str = Field(min_length=1, max_length=200)
    unit_price: Money
    currency: Currency
    quantity: int = Field(ge=1)


class Reservation(BaseModel):
    """The catalog's reservation answer."""

    model_config = ConfigDict(extra="ignore")

    reservation_id: uuid.UUID
    status: Literal["held", "committed", "released"]
    items: list[ReservedItem]


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _product_id(problem: dict[str, Any]) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(problem.get("product_id")))
    except ValueError:
        return None


class CatalogClient:
    """Reserve (and commit) and release stock; every call is idempotent per reservation id.

    That is what makes retries safe: each call is repeated with jittered backoff on transient
    failures, and a call with all its retries (and the token fetch) fits in its ``deadline``.
    """

    def __init__(self, *, http: httpx.AsyncClient, tokens: ServiceTokenProvider) -> None:
        self._http = http
        self._tokens = tokens

    async def reserve(
        self,
        *,
        reservation_id: uuid.UUID,
        items: Sequence[tuple[uuid.UUID, int]],
        ttl_seconds: int,
        deadline: Deadline,
    ) -> Reservation:
        """Hold and commit ``items`` under ``reservation_id`` in one call (the catalog's one-step
        form). Repeating it returns the same reservation and takes no more stock: ``committed``
        (a reservation of this id still held is committed by it), or ``released`` if it was
        released before."""
        payload = {
            "reservation_id": str(reservation_id),
            "items": [{"product_id": str(product), "quantity": qty} for product, qty in items],
            "ttl_seconds": ttl_seconds,
            "commit": True,
        }

        async def attempt() -> Reservation:
            response = await self._post("/inventory/reservations", payload, deadline)
            if response.status_code in (200, 201):
                try:
                    reservation = Reservation.model_validate_json(response.content)
                except ValidationError as exc:
                    raise CatalogUnavailable("the catalog's reservation is not valid") from exc
                if reservation.reservation_id != reservation_id:
                    raise CatalogUnavailable("the catalog answered for another reservation")
                return reservation
            problem = _problem(response)
            if response.status_code == 409:
                product_id = _product_id(problem)
                if product_id is None:
                    # Taken by other items, or a hold of this id that expired before this call.
                    raise ReservationUnusable("the reservation id is taken or its hold expired")
                raise InsufficientStock(str(problem.get("detail", "")), product_id=product_id)
            if response.status_code == 422:
                # The catalog's unknown-product answer names the product (it also lists
                # `errors`, like any 422); a 422 without `product_id` is a request it refused.
                product_id = _product_id(problem)
                if product_id is not None:
                    detail = str(problem.get("detail", ""))
                    raise UnknownProduct(detail, product_id=product_id)
            raise self._unexpected(response)

        return await self._call(attempt, deadline)

    async def release(self, *, reservation_id: uuid.UUID, deadline: Deadline) -> None:
        """Return held or sold stock (idempotent); an unknown id held nothing, which is fine."""

        async def attempt() -> None:
            path = f"/inventory/reservations/{reservation_id}/release"
            response = await self._post(path, None, deadline)
            if response.status_code not in (200, 404):
                raise self._unexpected(response)

        await self._call(attempt, deadline)

    async def _call(self, attempt: Callable[[], Awaitable[T]], deadline: Deadline) -> T:
        try:
            return await retry_within(attempt, deadline=deadline)
        except TransientError as exc:
            raise CatalogUnavailable(str(exc)) from exc
        except ServiceCredentialsRefused as exc:
            raise CatalogUnavailable("no service token: credentials refused") from exc

    async def _post(
        self, path: str, payload: dict[str, Any] | None, deadline: Deadline
    ) -> httpx.Response:
        token = await self._tokens.get(deadline=deadline)
        try:
            response = await self._http.post(
                path,
                json=payload,
                headers={"Authorization": f"Bearer {token}"},
                timeout=deadline.require(),
            )
        except httpx.HTTPError as exc:
            raise TransientError(f"catalog unreachable ({type(exc).__name__})") from exc
        if response.status_code == 401:
            # The token may have been rotated or revoked: the next attempt fetches a fresh one.
            self._tokens.invalidate(token)
            raise TransientError("the catalog refused the service token")
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(f"the catalog answered {response.status_code}")
        return response

    @staticmethod
    def _unexpected(response: httpx.Response) -> CatalogUnavailable:
        return CatalogUnavailable(f"unexpected answer from the catalog: {response.status_code}")
