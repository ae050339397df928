"""One request id, end to end: in the logs of the gateway and of every service it touched."""

from __future__ import annotations

import contextlib

from common_libs.testing import wait_until

from tests.conftest import TracedOrder
from tests.fleet import Fleet

ORDER_PATH = ("gateway", "order-processing-service", "product-catalog-service", "user-service")


def test_an_orders_request_id_is_logged_by_the_gateway_and_every_service_it_touched(
    fleet: Fleet, first_order: TracedOrder
) -> None:
    request_id = first_order.request_id

    def logged_by(process: str) -> bool:
        return any(request_id in line for line in fleet.lines_of(process))

    def missing() -> list[str]:
        return [process for process in ORDER_PATH if not logged_by(process)]

    # The gateway writes its access log line once the answer is sent: wait for it.
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: not missing(), timeout=10, message="every log has the request id")
    assert missing() == []
    assert not logged_by("chat-llm-service")
