"""The events' declarations: the committed AsyncAPI document is theirs, and no event's data can
hold personal data."""

from __future__ import annotations

from pathlib import Path

from app.events import EVENTS, asyncapi
from app.models.order_models import OrderOut, OrderState

ASYNCAPI = Path(__file__).resolve().parents[2] / "asyncapi.json"


def test_committed_asyncapi_document_is_the_one_the_code_generates() -> None:
    assert ASYNCAPI.read_text() == asyncapi(), "asyncapi.json is stale: run `make asyncapi`"


def test_service_publishes_one_event_per_status_an_order_reaches() -> None:
    assert [event.name for event in EVENTS.events] == [
        "orders.order.confirmed",
        "orders.order.failed",
        "orders.order.cancelled",
        "orders.order.shipped",
        "orders.order.delivered",
    ]
    assert (EVENTS.name, EVENTS.stream.name) == ("order-processing-service", "ORDERS")


def test_event_data_is_the_api_order_without_its_shipping_address() -> None:
    assert {event.data for event in EVENTS.events} == {OrderState}
    assert set(OrderState.model_fields) == set(OrderOut.model_fields) - {"shipping_address"}
    assert "ShippingAddress" not in asyncapi()
