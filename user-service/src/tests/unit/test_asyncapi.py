"""The committed AsyncAPI document is the one the event declarations generate."""

from __future__ import annotations

import json

from app.events import asyncapi
from tests.conftest import SERVICE_ROOT


def test_committed_asyncapi_document_matches_the_declared_events() -> None:
    committed = (SERVICE_ROOT / "asyncapi.json").read_text()

    assert committed == asyncapi(), "asyncapi.json is stale: run `make asyncapi` and commit it"


def test_user_events_carry_no_personal_data() -> None:
    schemas = json.loads(asyncapi())["components"]["schemas"]

    assert sorted(schemas["UserEventData"]["properties"]) == ["id", "role"]
    assert sorted(schemas["DeletedData"]["properties"]) == ["id"]
