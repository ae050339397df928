"""The committed AsyncAPI document is the one the event declarations generate."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import FastAPI

from app.events import EVENTS, asyncapi

ASYNCAPI_FILE = Path(__file__).resolve().parents[2] / "asyncapi.json"


def test_committed_asyncapi_document_matches_the_event_declarations() -> None:
    committed = ASYNCAPI_FILE.read_text(encoding="utf-8")

    assert committed == asyncapi(), "asyncapi.json is out of date: run `make asyncapi`"


def test_asyncapi_documents_the_three_product_events_on_the_catalog_stream() -> None:
    document = json.loads(asyncapi())

    assert set(document["channels"]) == {
        "catalog.product.created",
        "catalog.product.updated",
        "catalog.product.deleted",
    }
    assert {event.source.stream.name for event in EVENTS.events} == {"CATALOG"}


def test_product_event_data_is_the_get_product_response_schema(offline_app: FastAPI) -> None:
    openapi = offline_app.openapi()["components"]["schemas"]["Product"]
    asyncapi_product = json.loads(asyncapi())["components"]["schemas"]["Product"]

    assert asyncapi_product == openapi
