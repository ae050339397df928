"""The one settlement of an order: the catalog's answer becomes the order's outcome, written once.

The request (``POST /orders``) and the reconciler both reserve and commit a ``pending`` order's
stock at the catalog (:mod:`app.services.reservation`), then write one outcome:

- confirmed: ``confirmed`` with the catalog's prices; ``201`` stored with the key and replayed.
- refused (not enough stock, unknown product, mixed currencies): ``failed``; the problem is stored
  with the key and replayed.
- abandoned (the reservation unusable; for the request, also the catalog unavailable): ``failed``
  and the key dropped, so that the retry the ``503`` invites starts afresh.
- left pending (the reconciler, when the catalog does not answer): its next pass tries again.

A ``failed`` order is marked for release in the same transaction. An outcome is written with its
event (``orders.order.confirmed`` or ``orders.order.failed``) in one transaction, and only by the
statement that moved the order out of ``pending``: whoever finds it settled already writes
neither. The claim is a single statement on an autocommit connection; every other commit goes
through :func:`app.db.session.unit_of_work` (the documented exception to "managers never
commit"). The reconciler writes in its own transaction, which holds the order's row lock.
"""

from __future__ import annotations

import logging
import math
import uuid
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.clients import catalog_client as catalog
from app.config import Settings
from app.db import idempotency_repository, order_repository, settlement_repository
from app.db.idempotency_repository import KeyRecord
from app.db.order_repository import ItemRecord, OrderRecord
from app.db.session import unit_of_work
from app.events import write_order_event
from app.models.order_models import OrderCreate, OrderOut
from app.services.errors import (
    CatalogUnavailable,
    IdempotencyKeyInFlight,
    OrderRefused,
    stored_problem,
)
from app.services.releases import ReservationReleases
from app.services.reservation import Pricing, ReservationTiming, reserve_and_commit

__all__ = ["OrderSettlement", "Outcome", "PendingOrder", "confirmed_answer"]

_logger = logging.getLogger(__name__)

# A claim that vanishes between our conflicting INSERT and our SELECT was dropped by a 503:
# claiming again is right, but never loop for ever.
_CLAIM_ATTEMPTS = 3

# Stands in for the timestamps of the answer stored with the key: the database sets them.
_UNSET = datetime(1970, 1, 1, tzinfo=UTC)


class Outcome(StrEnum):
    """How settling a ``pending`` order ended."""

    CONFIRMED = "confirmed"
    REFUSED = "refused"
    ABANDONED = "abandoned"
    LEFT_PENDING = "left_pending"
    # The order was no longer pending when the outcome was written: someone else settled it.
    SETTLED_ELSEWHERE = "settled_elsewhere"

    @property
    def must_release(self) -> bool:
        """Whether the order just failed, so that its reservation must be released."""
        return self in (Outcome.REFUSED, Outcome.ABANDONED)


@dataclass(frozen=True, slots=True)
class PendingOrder:
    """A ``pending`` order as its settlement needs it; ``items`` are ``(product_id, quantity)``."""

    id: uuid.UUID
    user_id: str
    shipping_address: dict[str, Any]
    items: tuple[tuple[uuid.UUID, int], ...]

    @classmethod
    def from_record(cls, record: OrderRecord) -> PendingOrder:
        """The pending order a stored record describes."""
        items = tuple((item.product_id, item.quantity) for item in record.items)
        return cls(record.id, record.user_id, record.shipping_address, items)


@dataclass(frozen=True, slots=True)
class _Settled:
    outcome: Outcome
    order: OrderRecord | None = None
    refusal: OrderRefused | None = None


class OrderSettlement:
    """Claims and settles orders; one instance per process."""

    def __init__(
        self, *, engine: AsyncEngine, client: catalog.CatalogClient, settings: Settings
    ) -> None:
        self._engine = engine
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._client = client
        self._timing = ReservationTiming(
            deadline_seconds=settings.catalog_deadline_seconds,
            reservation_ttl_seconds=settings.reservation_ttl_seconds,
            pause_after_reserve_seconds=settings.test_pause_after_reserve_seconds,
        )
        # The test-only pause is for a request's process killed there, never the reconciler.
        self._reconciler_timing = replace(self._timing, pause_after_reserve_seconds=0.0)
        self._key_ttl = timedelta(hours=settings.idempotency_ttl_hours)
        self._retry_after = max(1, math.ceil(settings.catalog_deadline_seconds))
        self.releases = ReservationReleases(
            engine=engine, client=client, deadline_seconds=settings.catalog_deadline_seconds
        )

    async def claim(
        self, *, user_id: str, key: str, request_hash: str, request: OrderCreate
    ) -> PendingOrder | KeyRecord:
        """Claim the key with a new ``pending`` order (one statement), or return the live claim."""
        items = tuple((item.product_id, item.quantity) for item in request.items)
        shipping_address = request.shipping_address.model_dump(mode="json")
        async with self._autocommit.connect() as connection:
            for _ in range(_CLAIM_ATTEMPTS):
                order = PendingOrder(uuid.uuid4(), user_id, shipping_address, items)
                if await idempotency_repository.place_pending_order(
                    connection,
                    order_id=order.id,
                    user_id=user_id,
                    key=key,
                    request_hash=request_hash,
                    ttl=self._key_ttl,
                    shipping_address=shipping_address,
                    items=items,
                ):
                    return order
                existing = await idempotency_repository.get_key(
                    connection, user_id=user_id, key=key
                )
                if existing is not None:
                    return existing
        raise IdempotencyKeyInFlight()

    async def settle_placement(self, *, order: PendingOrder) -> OrderRecord:
        """Settle the order its request just claimed: the confirmed order, else raise."""
        settled = await self._settle(
            order, held=None, timing=self._timing, keep_pending_when_unavailable=False
        )
        if settled.order is not None:
            return settled.order
        if settled.outcome.must_release:
            self.releases.release_later(order.id)
        if settled.refusal is not None:
            raise settled.refusal
        if settled.outcome is Outcome.SETTLED_ELSEWHERE:
            # Only the reconciler settles a pending order besides its request: answer its outcome.
            async with self._autocommit.connect() as connection:
                record = await order_repository.get_order(
                    connection, order_id=order.id, owner_id=None
                )
            if record is not None and record.status == "confirmed":
                return record
        raise CatalogUnavailable(retry_after=self._retry_after)

    async def settle_stale(self, *, order: PendingOrder, connection: AsyncConnection) -> Outcome:
        """Settle an order its request left ``pending``, in the reconciler's locking transaction."""
        settled = await self._settle(
            order,
            held=connection,
            timing=self._reconciler_timing,
            keep_pending_when_unavailable=True,
        )
        return settled.outcome

    async def aclose(self) -> None:
        """Let background releases finish within one deadline (the reconciler covers the rest)."""
        await self.releases.aclose()

    async def _settle(
        self,
        order: PendingOrder,
        *,
        held: AsyncConnection | None,
        timing: ReservationTiming,
        keep_pending_when_unavailable: bool,
    ) -> _Settled:
        """Reserve and commit at the catalog, then write the outcome: the one place that maps it."""
        try:
            pricing = await reserve_and_commit(
                client=self._client, order_id=order.id, items=order.items, timing=timing
            )
        except OrderRefused as refusal:
            answer = (refusal.status, stored_problem(refusal))
            if not await self._fail(order, held=held, refusal=answer):
                return _Settled(Outcome.SETTLED_ELSEWHERE)
            return _Settled(Outcome.REFUSED, refusal=refusal)
        except (catalog.CatalogUnavailable, catalog.ReservationUnusable) as exc:
            if keep_pending_when_unavailable and isinstance(exc, catalog.CatalogUnavailable):
                _logger.warning("pending order_id=%s left for later: %s", order.id, exc)
                return _Settled(Outcome.LEFT_PENDING)
            _logger.warning("order_id=%s failed: catalog: %s", order.id, exc)
            if not await self._fail(order, held=held, refusal=None):
                return _Settled(Outcome.SETTLED_ELSEWHERE)
            return _Settled(Outcome.ABANDONED)
        async with self._transaction(held) as connection:
            record = await settlement_repository.confirm_order(
                connection,
                order_id=order.id,
                currency=pricing.currency,
                total=pricing.total,
                priced_items=pricing.items,
                answer=confirmed_answer(order, pricing),
            )
            if record is not None:
                await write_order_event(connection, record)
        if record is None:
            return _Settled(Outcome.SETTLED_ELSEWHERE)
        return _Settled(Outcome.CONFIRMED, order=record)

    async def _fail(
        self,
        order: PendingOrder,
        *,
        held: AsyncConnection | None,
        refusal: tuple[int, dict[str, Any]] | None,
    ) -> bool:
        """Fail the order, store its refusal or drop its key, write its event (one transaction);
        False (nothing written) when it was no longer pending."""
        async with self._transaction(held) as connection:
            failed = await settlement_repository.fail_pending_order(
                connection, order_id=order.id, refusal=refusal
            )
            if failed is None:
                return False
            await write_order_event(connection, failed)
            return True

    def _transaction(
        self, held: AsyncConnection | None
    ) -> AbstractAsyncContextManager[AsyncConnection]:
        """Where to write an outcome: the reconciler's transaction (it holds the row lock), else a
        short transaction of our own."""
        if held is not None:
            return nullcontext(held)
        return unit_of_work(self._engine)


def confirmed_answer(order: PendingOrder, pricing: Pricing) -> dict[str, Any]:
    """The ``201`` body of the order once confirmed, without ``created_at`` and ``updated_at``."""
    prices = {item.product_id: item for item in pricing.items}
    record = OrderRecord(
        id=order.id,
        user_id=order.user_id,
        status="confirmed",
        currency=pricing.currency,
        total=pricing.total,
        shipping_address=order.shipping_address,
        created_at=_UNSET,
        updated_at=_UNSET,
        items=tuple(
            ItemRecord(product, quantity, prices[product].name, prices[product].unit_price)
            for product, quantity in order.items
        ),
    )
    return OrderOut.from_record(record).model_dump(
        mode="json", exclude={"created_at", "updated_at"}
    )
