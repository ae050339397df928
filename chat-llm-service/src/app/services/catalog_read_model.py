"""The catalog's read model: products kept in this service's database from the ``CATALOG``
stream, so that a chat turn grounds without calling the catalog (API.md, "Events").

Three background tasks, started together by :func:`start_catalog_read_model`:

- the consumer of ``catalog.product.>`` (common-libs' ``EventConsumer``: inbox and version guard
  in ``consumed_versions``): created and updated upsert the product, deleted removes it;
- the initial fill, once per database (``read_model_state`` records that it finished): every
  product of the catalog's public ``GET /products``, page by page, each inserted only if no event
  of it was applied yet (the fill claims the product's version guard at version 0, below any
  event's). An event applied first (an update, a deletion) therefore always wins over the fill's
  older snapshot, and an event applied later still applies. The consumer runs meanwhile: the
  stream delivers every change made during the fill. One replica fills (an advisory lock); the
  others wait for its state row;
- the catch-up watch: the consumer has caught up once when the broker reports nothing pending
  or unacknowledged for it.

``/ready`` answers 503 (check ``catalog_read_model``) until the fill finished and the consumer
caught up once since the start.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack

from common_libs.db import DRIVER_ERRORS
from common_libs.events import CATALOG, AnyEvent, Broker, EventConsumer
from common_libs.events.broker import raise_if_cancelled, retry_delay
from common_libs.service_app import run_in_background
from nats.js.errors import NotFoundError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.clients.catalog_client import CatalogClient
from app.db import catalog_repository
from app.db.catalog_repository import ProductFilters
from app.models.catalog_models import CatalogProduct
from app.services.errors import StartingUp

# A statement through SQLAlchemy or through asyncpg itself (the search) failed.
_DATABASE_FAILED: tuple[type[Exception], ...] = (SQLAlchemyError, *DRIVER_ERRORS)

__all__ = [
    "CONSUMER_NAME",
    "ENTITY",
    "READ_MODEL",
    "CatalogReadModel",
    "CatalogSearchFailed",
    "apply_product_event",
    "start_catalog_read_model",
]

CONSUMER_NAME = "chat-llm-service-catalog"
ENTITY = "catalog.product"
READ_MODEL = "catalog"
"""The read model's name in ``read_model_state``."""

_MAX_RETRY_SECONDS = 10.0
_OTHER_REPLICA_POLL_SECONDS = 1.0
_CATCH_UP_POLL_SECONDS = 0.2
_logger = logging.getLogger(__name__)


class CatalogSearchFailed(Exception):
    """The read model could not be searched (the database failed)."""


async def apply_product_event(connection: AsyncConnection, event: AnyEvent) -> None:
    """Apply one catalog event in the consumer's transaction (after its inbox and version guard):
    created and updated carry the whole product, deleted its id."""
    kind = event.type.rsplit(".", 1)[-1]
    if kind == "deleted":
        await catalog_repository.delete_product(connection, product_id=uuid.UUID(event.subject))
    elif kind in {"created", "updated"}:
        product = CatalogProduct.model_validate(event.data)
        if str(product.id) != event.subject:
            raise ValueError(f"event {event.id} is about {event.subject}, its data is not")
        await catalog_repository.upsert_product(connection, product)
    else:  # a newer kind of event: its version is recorded, nothing else changes
        _logger.info("catalog event type %s ignored", event.type)


class CatalogReadModel:
    """Search the read model; fill it and tell whether it is ready (``/ready``)."""

    def __init__(self, *, engine: AsyncEngine, broker: Broker, catalog: CatalogClient) -> None:
        self._engine = engine
        self._broker = broker
        self._catalog = catalog
        self.is_filled = False
        self.has_caught_up = False

    async def search_products(self, *, terms: Sequence[str], limit: int) -> list[CatalogProduct]:
        """The products that match ``terms`` best; raises CatalogSearchFailed."""
        if not terms or limit < 1:
            return []
        try:
            # One statement, its own transaction (no BEGIN, no ROLLBACK; see common-libs'
            # db.driver_fetch).
            async with self._engine.connect() as connection:
                return await catalog_repository.search_products(
                    connection, terms=terms, limit=limit
                )
        except _DATABASE_FAILED as exc:
            raise CatalogSearchFailed(type(exc).__name__) from exc

    async def find_products(
        self, *, terms: Sequence[str], filters: ProductFilters, limit: int
    ) -> list[CatalogProduct]:
        """The assistant's product search: as grounding searches when only words are given,
        else the products within ``filters`` (see ``filter_products``); raises
        CatalogSearchFailed."""
        if not filters.any:
            return await self.search_products(terms=terms, limit=limit)
        try:
            async with self._engine.connect() as connection:
                return await catalog_repository.filter_products(
                    connection, terms=terms, filters=filters, limit=limit
                )
        except _DATABASE_FAILED as exc:
            raise CatalogSearchFailed(type(exc).__name__) from exc

    async def get_product(self, product_id: uuid.UUID) -> CatalogProduct | None:
        """The product, when the read model has it; raises CatalogSearchFailed."""
        try:
            async with self._engine.connect() as connection:
                return await catalog_repository.get_product(connection, product_id=product_id)
        except _DATABASE_FAILED as exc:
            raise CatalogSearchFailed(type(exc).__name__) from exc

    async def ready(self) -> None:
        """The readiness check: raises StartingUp until filled and caught up once."""
        if not self.is_filled:
            raise StartingUp("the catalog read model's initial fill has not finished")
        if not self.has_caught_up:
            raise StartingUp("the catalog consumer has not caught up with the stream yet")

    async def fill(self) -> None:
        """Fill the read model unless that was done (here or by another replica); retry with
        backoff while the catalog or the database fails."""
        waiting = False

        async def attempt() -> float | None:
            nonlocal waiting
            if await self._fill_once():
                self.is_filled = True
                return None
            if not waiting:
                _logger.info("another replica fills the catalog read model; waiting for it")
                waiting = True
            return _OTHER_REPLICA_POLL_SECONDS

        await _until_done(attempt, failing="catalog read model fill failed")

    async def _fill_once(self) -> bool:
        """True once the read model is filled; False while another replica fills it."""
        async with self._engine.connect() as connection:
            if await catalog_repository.is_filled(connection, name=READ_MODEL):
                return True
        # The lock lives as long as this guard transaction, which also records that the fill
        # finished: a replica that takes the lock next sees the state row.
        async with self._engine.begin() as guard:
            if not await catalog_repository.try_lock_fill(guard, name=READ_MODEL):
                return False
            if not await catalog_repository.is_filled(guard, name=READ_MODEL):
                await self._copy_catalog()
                await catalog_repository.mark_filled(guard, name=READ_MODEL)
        return True

    async def _copy_catalog(self) -> None:
        seen = inserted = 0
        async for page in self._catalog.pages():
            async with self._engine.begin() as connection:
                inserted += await catalog_repository.fill_products(
                    connection, page, consumer=CONSUMER_NAME, entity=ENTITY
                )
            seen += len(page)
        _logger.info(
            "catalog read model filled: %d products listed, %d inserted (events had the others)",
            seen,
            inserted,
        )

    async def watch_catch_up(self) -> None:
        """Set ``has_caught_up`` once the broker holds nothing the consumer has not handled."""

        async def attempt() -> float | None:
            try:
                js = await self._broker.jetstream()
                info = await js.consumer_info(CATALOG.name, CONSUMER_NAME)
            except NotFoundError:  # the consumer has not subscribed yet
                return _CATCH_UP_POLL_SECONDS
            if info.num_pending or info.num_ack_pending:
                return _CATCH_UP_POLL_SECONDS
            self.has_caught_up = True
            _logger.info("catalog consumer caught up with the stream")
            return None

        await _until_done(attempt, failing="catalog consumer's progress unknown")


async def _until_done(attempt: Callable[[], Awaitable[float | None]], *, failing: str) -> None:
    """Run ``attempt`` until it returns None; it returns how long to wait before the next one.
    An attempt that raises is retried with backoff (``retry_delay``), logged as ``failing``."""
    failures = 0
    while True:
        try:
            delay = await attempt()
        except Exception as exc:
            raise_if_cancelled()
            failures += 1
            delay = retry_delay(failures, _MAX_RETRY_SECONDS)
            _logger.warning(
                "%s (%s: %s); retrying in %.1f s", failing, type(exc).__name__, exc, delay
            )
        else:
            if delay is None:
                return
            failures = 0
        await asyncio.sleep(delay)


def start_catalog_read_model(
    stack: AsyncExitStack, *, engine: AsyncEngine, broker: Broker, catalog: CatalogClient
) -> CatalogReadModel:
    """Consume ``catalog.product.>``, fill and watch the catch-up in the background until
    ``stack`` closes."""
    read_model = CatalogReadModel(engine=engine, broker=broker, catalog=catalog)
    consumer = EventConsumer(
        name=CONSUMER_NAME,
        stream=CATALOG,
        subject=f"{ENTITY}.>",
        engine=engine,
        broker=broker,
        handler=apply_product_event,
    )
    run_in_background(stack, consumer.run(), name=CONSUMER_NAME)
    run_in_background(stack, read_model.fill(), name="catalog-read-model-fill")
    run_in_background(stack, read_model.watch_catch_up(), name="catalog-consumer-catch-up")
    return read_model
