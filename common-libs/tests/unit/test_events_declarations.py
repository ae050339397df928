"""Event declarations, the envelope as published, the streams and the AsyncAPI document."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import BaseModel

from common_libs.events import CATALOG, DEADLETTER, DeletedData, EventEnvelope, EventSource
from common_libs.events.asyncapi import asyncapi_document, asyncapi_json
from common_libs.events.envelope import _captures, envelope_json
from common_libs.events.streams import FLEET_STREAMS, StreamSpec


class Product(BaseModel):
    id: uuid.UUID
    name: str


def catalog() -> EventSource:
    source = EventSource("product-catalog-service", CATALOG)
    source.event("catalog.product.updated", Product, "A product changed.")
    source.event("catalog.product.deleted", DeletedData, "A product was deleted.")
    return source


def test_an_event_type_is_named_domain_entity_event_within_its_stream() -> None:
    source = catalog()
    updated = source.events[0]
    assert (updated.name, updated.entity, updated.source) == (
        "catalog.product.updated",
        "catalog.product",
        source,
    )
    with pytest.raises(ValueError, match=r"is not <domain>\.<entity>\.<event>"):
        source.event("catalog.ProductUpdated", Product, "")
    with pytest.raises(ValueError, match="not a subject of stream CATALOG"):
        source.event("orders.order.confirmed", Product, "")
    with pytest.raises(ValueError, match="declared twice"):
        source.event("catalog.product.updated", Product, "")


@pytest.mark.parametrize(
    ("pattern", "subject", "captured"),
    [
        ("catalog.>", "catalog.product.updated", True),
        ("catalog.>", "catalog", False),
        ("catalog.*.updated", "catalog.product.updated", True),
        ("catalog.*.updated", "catalog.product.deleted", False),
        ("catalog.product.updated", "catalog.product.updated", True),
        ("catalog.product", "catalog.product.updated", False),
        ("catalog.product.updated.more", "catalog.product.updated", False),
    ],
)
def test_nats_subject_matching(pattern: str, subject: str, captured: bool) -> None:
    assert _captures(pattern, subject) is captured


def test_the_published_envelope_parses_back_with_the_data_as_stored() -> None:
    event_id = uuid.uuid4()
    body = envelope_json(
        event_id=event_id,
        type_="catalog.product.updated",
        source="product-catalog-service",
        subject="p-1",
        version=7,
        occurred_at=datetime(2026, 12, 2, 11, 0, tzinfo=timezone(timedelta(hours=1))),
        request_id=None,
        data_json='{"id": "p-1", "price": "9.90"}',
    )
    parsed = json.loads(body)
    assert parsed["occurred_at"] == "2026-12-02T10:00:00Z"
    assert parsed["data"] == {"id": "p-1", "price": "9.90"}
    envelope = EventEnvelope[dict[str, str]].model_validate_json(body)
    assert (envelope.id, envelope.version, envelope.occurred_at) == (
        event_id,
        7,
        datetime(2026, 12, 2, 10, tzinfo=UTC),
    )


def test_the_fleets_streams_keep_a_week_on_file_and_drop_duplicates() -> None:
    assert [spec.name for spec in FLEET_STREAMS] == ["CATALOG", "ORDERS", "USERS", "DEADLETTER"]
    config = CATALOG.config()
    assert (config.subjects, config.max_age, config.duplicate_window) == (
        ["catalog.>"],
        7 * 86400,
        600,
    )
    assert config.storage is not None
    assert config.storage.value == "file"
    assert DEADLETTER.config().max_age == 30 * 86400
    assert StreamSpec("X", ("x.>",)).max_age == timedelta(days=7)


def test_the_asyncapi_document_has_a_channel_and_a_message_per_event() -> None:
    document = asyncapi_document(
        catalog(), title="Catalog events", version="1.0.0", description="What the catalog says."
    )
    assert document["asyncapi"] == "3.0.0"
    assert list(document["channels"]) == ["catalog.product.updated", "catalog.product.deleted"]
    message = document["components"]["messages"]["catalog.product.updated"]
    ref = message["payload"]["$ref"]
    schema = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    data_ref = schema["properties"]["data"]["$ref"]
    assert document["components"]["schemas"][data_ref.rsplit("/", 1)[1]]["required"] == [
        "id",
        "name",
    ]
    assert set(schema["required"]) >= {"id", "type", "source", "subject", "version", "data"}
    assert message["headers"]["required"] == ["Nats-Msg-Id"]
    assert document["operations"]["send.catalog.product.deleted"]["action"] == "send"
    text = asyncapi_json(catalog(), title="Catalog events", version="1.0.0", description="")
    assert text.endswith("}\n")
    assert json.loads(text)["info"]["version"] == "1.0.0"


def test_the_package_imports_what_is_used_when_it_is_used() -> None:
    import subprocess
    import sys

    import common_libs.events as events

    with pytest.raises(AttributeError, match="has no attribute 'Nothing'"):
        _ = events.Nothing
    # Reading the broker needs the envelope only: no SQLAlchemy (not in the testing extra).
    code = (
        "import sys, common_libs.testing.events; "
        "assert 'sqlalchemy' not in sys.modules, 'sqlalchemy imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
