"""The read model follows the catalog's events: created and updated upsert the product, deleted
removes it; a duplicate or an event not newer than the one applied changes nothing, so a deleted
product comes back neither with an older event nor with a later fill.

The events are real envelopes published into the session broker's CATALOG stream; the app
(``app`` fixture) consumes them with its lifespan running.
"""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import catalog_repository
from app.models.catalog_models import CatalogProduct
from app.services.catalog_read_model import CONSUMER_NAME, ENTITY
from tests.integration.conftest import as_stored, stored_product
from tests.support.catalog_events import CatalogEvents
from tests.support.servers import product


async def test_created_updated_and_deleted_events_are_applied(
    app: FastAPI, catalog_feed: CatalogEvents
) -> None:
    engine: AsyncEngine = app.state.engine
    kettle = product("Steel Kettle", price="25.00", description="1.7 l", stock=3)
    cheaper = {**kettle, "price": "19.90", "stock_available": 0, "name": "Steel Kettle 2"}

    await catalog_feed.wait_handled(await catalog_feed.created(kettle))
    created = await stored_product(engine, kettle["id"])
    await catalog_feed.wait_handled(await catalog_feed.updated(cheaper))
    updated = await stored_product(engine, kettle["id"])
    await catalog_feed.wait_handled(await catalog_feed.deleted(kettle))

    assert created == as_stored(kettle)
    assert updated == as_stored(cheaper)
    assert await stored_product(engine, kettle["id"]) is None


async def test_an_event_delivered_again_has_its_effect_once(
    app: FastAPI, catalog_feed: CatalogEvents
) -> None:
    engine: AsyncEngine = app.state.engine
    lamp = product("Desk Lamp", price="30.00")
    created = catalog_feed.envelope("created", lamp["id"], lamp)
    await catalog_feed.publish(created)
    renamed = {**lamp, "name": "Desk Lamp Pro"}
    await catalog_feed.wait_handled(await catalog_feed.updated(renamed))

    # The broker drops a second publish of the same id; under another message id (as after its
    # duplicate window) it is delivered, and the consumer's inbox recognises the event.
    dropped = await catalog_feed.js.publish(
        created.type,
        created.model_dump_json().encode(),
        headers={"Nats-Msg-Id": str(created.id)},
    )
    again = await catalog_feed.publish(created, message_id=f"{created.id}-again")
    await catalog_feed.wait_handled(again)

    assert dropped.duplicate
    assert await stored_product(engine, lamp["id"]) == as_stored(renamed)


async def test_an_event_not_newer_than_the_applied_one_is_ignored(
    app: FastAPI, catalog_feed: CatalogEvents
) -> None:
    engine: AsyncEngine = app.state.engine
    mouse = product("Wireless Mouse", price="15.00")
    await catalog_feed.created(mouse, version=1)
    latest = {**mouse, "price": "12.00"}
    await catalog_feed.updated(latest, version=3)

    # A new event (its own id) carrying an older state, and one as old as the applied one.
    await catalog_feed.updated({**mouse, "price": "14.00"}, version=2)
    await catalog_feed.wait_handled(
        await catalog_feed.updated({**mouse, "price": "13.00"}, version=3)
    )

    assert await stored_product(engine, mouse["id"]) == as_stored(latest)


async def test_a_deleted_product_stays_deleted_whatever_older_event_follows(
    app: FastAPI, catalog_feed: CatalogEvents
) -> None:
    engine: AsyncEngine = app.state.engine
    tent = product("Dome Tent", price="99.00")
    await catalog_feed.created(tent, version=1)
    await catalog_feed.deleted(tent, version=3)

    await catalog_feed.updated({**tent, "price": "89.00"}, version=2)
    await catalog_feed.wait_handled(await catalog_feed.created(tent, version=1))

    assert await stored_product(engine, tent["id"]) is None


async def test_a_later_fill_brings_back_no_deleted_product(
    app: FastAPI, catalog_feed: CatalogEvents
) -> None:
    engine: AsyncEngine = app.state.engine
    deleted, unknown = product("Old Backpack"), product("New Backpack")
    await catalog_feed.created(deleted)
    await catalog_feed.wait_handled(await catalog_feed.deleted(deleted))
    page = [CatalogProduct.model_validate(item) for item in (deleted, unknown)]

    async with engine.connect() as connection:
        transaction = await connection.begin()
        inserted = await catalog_repository.fill_products(
            connection, page, consumer=CONSUMER_NAME, entity=ENTITY
        )
        ids = {
            product_id
            for product_id in (deleted["id"], unknown["id"])
            if await connection.scalar(
                text("SELECT 1 FROM catalog_products WHERE id = :id"),
                {"id": product_id},
            )
        }
        await transaction.rollback()

    assert (inserted, ids) == (1, {unknown["id"]})
