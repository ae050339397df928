"""The order id ``OrdersClient`` sends stays one path segment of ``/orders/{id}``: an id the model
made up can only ever name an order, never another path of the API (with the caller's token)."""

from __future__ import annotations

import httpx
import pytest
from common_libs.http_client import PeerClient

from app.clients.orders_client import OrderNotFound, OrdersClient


def _client(sent: list[httpx.URL]) -> OrdersClient:
    """A client whose transport records each URL and answers 404."""

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.url)
        return httpx.Response(404)

    http = PeerClient(base_url="http://orders.test", transport=httpx.MockTransport(answer))
    return OrdersClient(http, deadline_seconds=1.0)


@pytest.mark.parametrize(
    ("order_id", "raw_path"),
    [
        ("../users/me", b"/orders/..%2Fusers%2Fme"),
        ("x/cancel", b"/orders/x%2Fcancel"),
        ("a?status=shipped#b", b"/orders/a%3Fstatus%3Dshipped%23b"),
    ],
)
async def test_an_id_is_sent_as_one_path_segment(order_id: str, raw_path: bytes) -> None:
    sent: list[httpx.URL] = []

    with pytest.raises(OrderNotFound):
        await _client(sent).get_order(token="t", order_id=order_id)

    assert [url.raw_path for url in sent] == [raw_path]


@pytest.mark.parametrize("order_id", ["", ".", ".."])
async def test_an_id_that_would_name_another_path_is_not_found_without_a_call(
    order_id: str,
) -> None:
    sent: list[httpx.URL] = []

    with pytest.raises(OrderNotFound):
        await _client(sent).get_order(token="t", order_id=order_id)

    assert sent == []
