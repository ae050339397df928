"""A stand-in for product-catalog-service's internal reservation API, at the HTTP boundary.

Speaks the documented contract (service token required):

- ``POST /inventory/reservations``
  ``{reservation_id, items: [{product_id, quantity}], ttl_seconds?, commit?}``
  -> ``201`` (``200`` for a known id with the same items; no more stock taken)
  ``{reservation_id, status, expires_at, items: [{product_id, name, unit_price, currency,
  quantity}]}``; not enough stock ``409`` problem with ``product_id``; unknown product ``422``
  problem with ``product_id`` and ``errors`` (like every 422 of the catalog); a known id with
  other items ``409``. All items or none. With ``commit: true`` (the one-step form) the stock is
  sold at once (``committed``), and a known id still held is committed.
- ``POST /inventory/reservations/{id}/release`` -> ``200`` released (idempotent); unknown ``404``.

Faults can be switched on per operation: ``error`` (500), ``hang`` (no answer for a while),
``late`` (do the work, then answer after a delay) and ``gate`` (do the work, then answer once the
test opens the gate).

Its problems have the types the catalog answers (``urn:fleet:product-catalog:*`` and the shared
``urn:fleet:common:*``; ``about:blank`` only for its 500s).
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from common_libs.auth import TokenVerifier
from common_libs.errors import AuthenticationRequired, InsufficientScope, ProblemError
from common_libs.problem_types import VALIDATION_FAILED
from common_libs.testing import TestTokenIssuer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.stub_problems import problem

Operation = Literal["reserve", "release"]
FaultKind = Literal["error", "hang", "late", "gate"]


@dataclass
class StubProduct:
    """A product with its stock: ``stock`` on hand, ``held`` of it reserved."""

    id: uuid.UUID
    name: str
    price: Decimal
    currency: str
    stock: int
    held: int = 0


@dataclass
class StubReservation:
    """A reservation and its lines."""

    id: uuid.UUID
    items: tuple[tuple[uuid.UUID, int], ...]
    status: str
    expires_at: datetime


@dataclass(frozen=True)
class Fault:
    """How an operation misbehaves."""

    kind: FaultKind
    seconds: float = 0.0
    # How many more calls misbehave (None: every call until healed).
    calls: int | None = None


_CATALOG = "urn:fleet:product-catalog:"
# The catalog's refusals of the reservation API: (status, type, title).
_REFUSALS: dict[str, tuple[int, str, str]] = {
    "out-of-stock": (409, _CATALOG + "out-of-stock", "Out of Stock"),
    "reservation-mismatch": (409, _CATALOG + "reservation-mismatch", "Reservation Mismatch"),
    "unknown-product": (422, _CATALOG + "unknown-product", "Unknown Product"),
    "reservation-not-found": (404, _CATALOG + "reservation-not-found", "Reservation Not Found"),
    "validation-failed": (422, VALIDATION_FAILED.type, VALIDATION_FAILED.title),
}


def _error(error: ProblemError) -> JSONResponse:
    """The answer common-libs' handlers give ``error`` (auth's 401 and 403)."""
    return problem(error.status, error.type, error.title, error.detail, error.headers)


def _refusal(refusal: str, payload: dict[str, Any]) -> JSONResponse:
    status, type_, title = _REFUSALS[refusal]
    return problem(status, type_, title, **payload)


def _failure() -> JSONResponse:
    return problem(500, "about:blank", "Internal Server Error", "the catalog failed")


class CatalogStub:
    """In-memory stock and reservations behind the catalog's reservation endpoints."""

    def __init__(self, issuer: TestTokenIssuer) -> None:
        self._verifier = TokenVerifier(
            issuer.key_source(), issuer=issuer.issuer, audience=issuer.audience
        )
        self._lock = threading.Lock()
        self.products: dict[uuid.UUID, StubProduct] = {}
        self.reservations: dict[uuid.UUID, StubReservation] = {}
        self.calls: Counter[tuple[str, uuid.UUID]] = Counter()
        self.faults: dict[str, Fault] = {}
        self._gate = threading.Event()
        base = "/inventory/reservations"
        self.app = Starlette(
            routes=[
                Route(base, self._reserve, methods=["POST"]),
                Route(base + "/{reservation_id}/release", self._release, methods=["POST"]),
            ]
        )

    # --- what tests set up and look at -----------------------------------------------------

    def add_product(
        self, *, price: str = "10.00", stock: int = 10, currency: str = "USD"
    ) -> uuid.UUID:
        """A new product; returns its id."""
        product_id = uuid.uuid4()
        with self._lock:
            self.products[product_id] = StubProduct(
                product_id, f"Product {product_id.hex[:6]}", Decimal(price), currency, stock
            )
        return product_id

    def available(self, product_id: uuid.UUID) -> int:
        """Stock that may still be reserved."""
        with self._lock:
            product = self.products[product_id]
            return product.stock - product.held

    def on_hand(self, product_id: uuid.UUID) -> int:
        """Stock not sold yet (held stock included)."""
        with self._lock:
            return self.products[product_id].stock

    def status(self, reservation_id: uuid.UUID) -> str | None:
        """The reservation's status, or None when the catalog never saw it."""
        with self._lock:
            reservation = self.reservations.get(reservation_id)
            return None if reservation is None else reservation.status

    def count(self, operation: Operation, reservation_id: uuid.UUID) -> int:
        """How many requests for ``operation`` on this reservation arrived."""
        with self._lock:
            return self.calls[(operation, reservation_id)]

    def fail(
        self,
        operation: Operation,
        kind: FaultKind,
        seconds: float = 0.0,
        *,
        calls: int | None = None,
    ) -> None:
        """Make ``operation`` misbehave until :meth:`heal` (or for its next ``calls`` only)."""
        with self._lock:
            self.faults[operation] = Fault(kind, seconds, calls)
            if kind == "gate":
                self._gate.clear()

    def open_gate(self) -> None:
        """Let answers held by a ``gate`` fault go."""
        self._gate.set()

    def heal(self) -> None:
        """Every operation behaves again."""
        with self._lock:
            self.faults.clear()
        self._gate.set()

    def hold(self, reservation_id: uuid.UUID, items: list[tuple[uuid.UUID, int]]) -> None:
        """Hold stock as if a reservation request had arrived (before a crash, say)."""
        status, _ = self._do_reserve(reservation_id, tuple(items), 600, commit=False)
        assert status == 201

    def expire(self, reservation_id: uuid.UUID) -> None:
        """Release a held reservation the way its expiry would."""
        self._do_release(reservation_id)

    # --- the HTTP side -----------------------------------------------------------------------

    async def _authorize(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return _error(AuthenticationRequired())
        try:
            principal = await self._verifier.verify(header.removeprefix("Bearer "))
        except ProblemError as exc:
            return _error(exc)
        if not principal.is_service:
            return _error(InsufficientScope("only services may reserve stock"))
        return None

    async def _misbehave(self, operation: Operation, reservation_id: uuid.UUID) -> Fault | None:
        """Count the call and apply its fault; returns the fault (``_after_work`` finishes it)."""
        with self._lock:
            self.calls[(operation, reservation_id)] += 1
            fault = self.faults.get(operation)
            if fault is not None and fault.calls is not None:
                if fault.calls > 1:
                    self.faults[operation] = replace(fault, calls=fault.calls - 1)
                else:
                    del self.faults[operation]
        if fault is not None and fault.kind == "hang":
            await asyncio.sleep(fault.seconds)
        return fault

    async def _after_work(self, fault: Fault | None) -> None:
        if fault is not None and fault.kind == "late":
            await asyncio.sleep(fault.seconds)
        if fault is not None and fault.kind == "gate":
            await asyncio.to_thread(self._gate.wait, 30)

    async def _reserve(self, request: Request) -> Response:
        denied = await self._authorize(request)
        if denied is not None:
            return denied
        body = await request.json()
        reservation_id = uuid.UUID(body["reservation_id"])
        items = tuple((uuid.UUID(i["product_id"]), int(i["quantity"])) for i in body["items"])
        fault = await self._misbehave("reserve", reservation_id)
        if fault is not None and fault.kind in ("error", "hang"):
            return _failure()
        ttl, commit = body.get("ttl_seconds", 600), body.get("commit", False) is True
        status, payload = self._do_reserve(reservation_id, items, ttl, commit=commit)
        await self._after_work(fault)
        if isinstance(status, str):
            return _refusal(status, payload)
        return JSONResponse(payload, status_code=status)

    async def _release(self, request: Request) -> Response:
        denied = await self._authorize(request)
        if denied is not None:
            return denied
        try:
            reservation_id = uuid.UUID(request.path_params["reservation_id"])
        except ValueError:
            location = ["path", "reservation_id"]
            errors = [{"loc": location, "msg": "Input should be a valid UUID", "type": "uuid"}]
            return _refusal("validation-failed", {"detail": "invalid request", "errors": errors})
        fault = await self._misbehave("release", reservation_id)
        if fault is not None and fault.kind in ("error", "hang"):
            return _failure()
        status, payload = self._do_release(reservation_id)
        await self._after_work(fault)
        if isinstance(status, str):
            return _refusal(status, payload)
        return JSONResponse(payload, status_code=status)

    # --- the catalog's rules -----------------------------------------------------------------

    def _view(self, reservation: StubReservation) -> dict[str, Any]:
        lines = []
        for product_id, quantity in reservation.items:
            product = self.products[product_id]
            lines.append(
                {
                    "product_id": str(product_id),
                    "name": product.name,
                    "unit_price": f"{product.price:.2f}",
                    "currency": product.currency,
                    "quantity": quantity,
                }
            )
        return {
            "reservation_id": str(reservation.id),
            "status": reservation.status,
            "expires_at": reservation.expires_at.isoformat().replace("+00:00", "Z"),
            "items": lines,
        }

    def _do_reserve(
        self,
        reservation_id: uuid.UUID,
        items: tuple[tuple[uuid.UUID, int], ...],
        ttl: int,
        *,
        commit: bool,
    ) -> tuple[int | str, dict[str, Any]]:
        """The status of a success, or the name of the refusal (``_REFUSALS``), and the body."""
        with self._lock:
            known = self.reservations.get(reservation_id)
            if known is not None:
                if known.items != items:
                    return "reservation-mismatch", {
                        "detail": "this reservation id holds other items"
                    }
                if commit:
                    self._sell_held(known)
                return 200, self._view(known)
            for index, (product_id, quantity) in enumerate(items):
                product = self.products.get(product_id)
                if product is None:
                    detail = f"unknown product {product_id}"
                    location = ["body", "items", index, "product_id"]
                    error = {"loc": location, "msg": "Unknown product", "type": "unknown_product"}
                    return "unknown-product", {
                        "detail": detail,
                        "product_id": str(product_id),
                        "errors": [error],
                    }
                if product.stock - product.held < quantity:
                    detail = f"not enough stock for {product.name}"
                    return "out-of-stock", {"detail": detail, "product_id": str(product_id)}
            for product_id, quantity in items:
                self.products[product_id].held += quantity
            reservation = StubReservation(
                reservation_id, items, "held", datetime.now(UTC) + timedelta(seconds=ttl)
            )
            self.reservations[reservation_id] = reservation
            if commit:
                self._sell_held(reservation)
            return 201, self._view(reservation)

    def _sell_held(self, reservation: StubReservation) -> None:
        """Held stock becomes sold (under the lock); any other status stays as it is."""
        if reservation.status == "held":
            for product_id, quantity in reservation.items:
                self.products[product_id].held -= quantity
                self.products[product_id].stock -= quantity
            reservation.status = "committed"

    def _do_release(self, reservation_id: uuid.UUID) -> tuple[int | str, dict[str, Any]]:
        with self._lock:
            reservation = self.reservations.get(reservation_id)
            if reservation is None:
                return "reservation-not-found", {"detail": "no such reservation"}
            for product_id, quantity in reservation.items:
                if reservation.status == "held":
                    self.products[product_id].held -= quantity
                elif reservation.status == "committed":
                    self.products[product_id].stock += quantity
            reservation.status = "released"
            return 200, self._view(reservation)
