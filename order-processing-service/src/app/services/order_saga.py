"""The order saga: placing and cancelling orders, which talk to the catalog between commits.

Placing an order: claim the key and insert the ``pending`` order in one atomic statement that
commits BEFORE the catalog is called (a crash then leaves a row the reconciler finds); reserve
the stock at the catalog with the order's id as reservation id, then commit that reservation;
confirm the order in a second atomic statement. A refusal or an error fails the order and
releases the reservation. Those two statements run on an autocommit connection; every other
commit goes through :func:`app.db.session.unit_of_work`, the one documented exception to
"managers never commit".
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from app.clients import catalog_client as catalog
from app.clients.resilience import Deadline
from app.config import Settings
from app.db import idempotency_repository, order_repository
from app.db.idempotency_repository import KeyRecord
from app.db.session import unit_of_work
from app.models.order_models import OrderCreate, OrderOut
from app.services import idempotency
from app.services.errors import (
    CatalogUnavailable,
    IdempotencyKeyMissing,
    OrderNotFound,
    OrderRefused,
    OrderStateConflict,
    RequestInFlight,
)
from app.services.settlement import (
    SagaTiming,
    reserve_and_commit,
    to_order_out,
    write_abandonment,
    write_confirmation,
    write_refusal,
)

__all__ = ["OrderSaga"]

_logger = logging.getLogger(__name__)

# A claim that vanishes between our conflicting INSERT and our SELECT was dropped by a 503:
# claiming again is right, but never loop for ever.
_CLAIM_ATTEMPTS = 3


class OrderSaga:
    """Runs the steps of placing and cancelling orders; one instance per process."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        client: catalog.CatalogClient,
        settings: Settings,
    ) -> None:
        self._engine = engine
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._client = client
        self.timing = SagaTiming(
            deadline_seconds=settings.catalog_deadline_seconds,
            reservation_ttl_seconds=settings.reservation_ttl_seconds,
            pause_after_reserve_seconds=settings.test_pause_after_reserve_seconds,
        )
        self._key_ttl = timedelta(hours=settings.idempotency_ttl_hours)
        self._retry_after = max(1, math.ceil(settings.catalog_deadline_seconds))
        self._background: set[asyncio.Task[None]] = set()

    async def place_order(
        self, *, user_id: str, idempotency_key: str | None, request: OrderCreate
    ) -> OrderOut:
        """Place an order once per key: confirmed with the catalog's prices, or refused."""
        if idempotency_key is None:
            raise IdempotencyKeyMissing()
        hashed = idempotency.request_hash(request)
        claim = await self._claim(user_id, idempotency_key, hashed, request)
        if isinstance(claim, KeyRecord):
            return idempotency.replay(claim, hashed_request=hashed)
        return await self._settle(claim, user_id, request)

    async def cancel_order(self, *, order_id: uuid.UUID, owner_id: str | None) -> OrderOut:
        """Cancel a ``confirmed`` order and return its stock to the catalog."""
        async with unit_of_work(self._engine) as connection:
            if not await order_repository.cancel_confirmed_order(
                connection, order_id=order_id, owner_id=owner_id
            ):
                current = await order_repository.get_order(
                    connection, order_id=order_id, owner_id=owner_id
                )
                if current is None:
                    raise OrderNotFound()
                raise OrderStateConflict(
                    f"Only a confirmed order can be cancelled; this one is {current.status}."
                )
        # The cancellation is durable with its release marker: if the catalog does not answer
        # now, the reconciler releases the stock later.
        await self.release_reservation(order_id=order_id)
        async with unit_of_work(self._engine) as connection:
            record = await order_repository.get_order(connection, order_id=order_id, owner_id=None)
        assert record is not None
        return to_order_out(record)

    async def release_reservation(self, *, order_id: uuid.UUID) -> bool:
        """Release the order's reservation and clear its marker; False leaves it for later."""
        try:
            await self._client.release(
                reservation_id=order_id, deadline=Deadline.within(self.timing.deadline_seconds)
            )
        except catalog.CatalogUnavailable as exc:
            _logger.warning("release of order_id=%s postponed: %s", order_id, exc)
            return False
        async with unit_of_work(self._engine) as connection:
            await order_repository.clear_release_marker(connection, order_id=order_id)
        return True

    async def aclose(self) -> None:
        """Let background releases finish within one deadline (the reconciler covers the rest)."""
        if self._background:
            await asyncio.wait(self._background, timeout=self.timing.deadline_seconds)
        for task in list(self._background):
            task.cancel()

    async def _claim(
        self, user_id: str, key: str, hashed: str, request: OrderCreate
    ) -> uuid.UUID | KeyRecord:
        """The new order's id when this request claims the key, else the existing claim."""
        items = [(item.product_id, item.quantity) for item in request.items]
        shipping_address = request.shipping_address.model_dump(mode="json")
        # Claim and pending order are one statement: autocommit, no BEGIN/COMMIT round trips.
        async with self._autocommit.connect() as connection:
            for _ in range(_CLAIM_ATTEMPTS):
                order_id = uuid.uuid4()
                if await order_repository.place_pending_order(
                    connection,
                    order_id=order_id,
                    user_id=user_id,
                    key=key,
                    request_hash=hashed,
                    ttl=self._key_ttl,
                    shipping_address=shipping_address,
                    items=items,
                ):
                    return order_id
                existing = await idempotency_repository.get_key(
                    connection, user_id=user_id, key=key
                )
                if existing is not None:
                    return existing
        raise RequestInFlight()

    async def _settle(self, order_id: uuid.UUID, user_id: str, request: OrderCreate) -> OrderOut:
        """Run the catalog steps for a fresh ``pending`` order and write the outcome."""
        items = [(item.product_id, item.quantity) for item in request.items]
        try:
            pricing = await reserve_and_commit(
                client=self._client, order_id=order_id, items=items, timing=self.timing
            )
        except OrderRefused as refusal:
            async with unit_of_work(self._engine) as connection:
                await write_refusal(connection, order_id=order_id, error=refusal)
            self._release_in_background(order_id)
            raise
        except (catalog.CatalogUnavailable, catalog.ReservationUnusable) as exc:
            _logger.warning("order_id=%s failed: catalog: %s", order_id, exc)
            async with unit_of_work(self._engine) as connection:
                await write_abandonment(connection, order_id=order_id)
            self._release_in_background(order_id)
            raise CatalogUnavailable(retry_after=self._retry_after) from None
        # The confirmation is one statement: autocommit, no BEGIN/COMMIT round trips.
        async with self._autocommit.connect() as connection:
            order = await write_confirmation(
                connection,
                order_id=order_id,
                user_id=user_id,
                shipping_address=request.shipping_address.model_dump(mode="json"),
                items=items,
                pricing=pricing,
            )
            if order is None:
                # Only the reconciler settles a pending order besides us; take its outcome.
                record = await order_repository.get_order(
                    connection, order_id=order_id, owner_id=None
                )
                assert record is not None
                order = to_order_out(record)
        if order.status != "confirmed":
            raise CatalogUnavailable(retry_after=self._retry_after)
        return order

    def _release_in_background(self, order_id: uuid.UUID) -> None:
        """Release without delaying the answer; the durable marker covers a failure or a crash."""
        task = asyncio.create_task(self._release_quietly(order_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _release_quietly(self, order_id: uuid.UUID) -> None:
        try:
            await self.release_reservation(order_id=order_id)
        except Exception:
            _logger.exception("release of order_id=%s failed; the reconciler retries it", order_id)
