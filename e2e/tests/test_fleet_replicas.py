"""`make up` with FLEET_REPLICAS=2: two processes of each service behind the gateway, which spreads
requests over them and sends a request a dead replica never received to the other."""

from __future__ import annotations

import os
import re
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import fleet as runner
import httpx
import pytest
from common_libs.testing import wait_until

from tests import fleet as fleet_harness
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, replicated_fleet_environment
from tests.fleet import Fleet, new_fleet, running_fleet
from tests.support.shop import Account, Endpoints, Shop, order_body, unique

SERVICE_PORTS = {
    "user-service": "USER_SERVICE_PORT",
    "product-catalog-service": "CATALOG_SERVICE_PORT",
    "order-processing-service": "ORDER_SERVICE_PORT",
    "chat-llm-service": "CHAT_SERVICE_PORT",
}
_PRODUCT_LISTS = re.compile(
    r'^http_request_duration_seconds_count\{(?=[^}]*method="GET")(?=[^}]*route="/products")'
    r"[^}]*\} (?P<count>[0-9.e+]+)$",
    re.MULTILINE,
)


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    # A browsing loop below asks as fast as it can: no 429 from the gateway. Each order waits 1 s
    # once its stock is reserved, so that requests are in flight when a replica stops.
    with running_fleet(
        replicated_fleet_environment(ORDERS_TEST_PAUSE_AFTER_RESERVE_SECONDS="1")
    ) as running:
        yield running


@pytest.fixture(scope="module")
def shop(fleet: Fleet) -> Iterator[Shop]:
    with httpx.Client(timeout=30) as client:
        yield Shop(Endpoints.through_gateway(fleet.gateway), client)


def _url(fleet: Fleet, service: str, replica: int) -> str:
    return fleet.replica_url(SERVICE_PORTS[service], replica)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _product_lists_served(fleet: Fleet, replica: int) -> float:
    metrics = httpx.get(f"{_url(fleet, 'product-catalog-service', replica)}/metrics").text
    return sum(float(match["count"]) for match in _PRODUCT_LISTS.finditer(metrics))


def _await_restart(fleet: Fleet, name: str, service: str, replica: int) -> None:
    wait_until(
        lambda: any(line.startswith("started again (pid=") for line in fleet.lines_of(name)),
        timeout=30,
        message=f"{name} started again",
    )
    wait_until(
        lambda: _answers(f"{_url(fleet, service, replica)}/ready"),
        timeout=60,
        message=f"{name} ready again",
    )


def test_each_service_runs_twice_and_the_gateway_spreads_requests_over_both(
    fleet: Fleet, shop: Shop
) -> None:
    for service in SERVICE_PORTS:
        for replica in (0, 1):
            assert fleet.lines_of(f"{service}-{replica + 1}")[0].startswith("started (pid=")
            wait_until(
                partial(_answers, f"{_url(fleet, service, replica)}/ready"),
                timeout=60,
                message=f"{service} replica {replica + 1} ready",
            )
    before = [_product_lists_served(fleet, replica) for replica in (0, 1)]
    statuses: list[int] = []

    def both_served() -> bool:
        statuses.append(shop.client.get(f"{fleet.gateway}/api/products").status_code)
        served = [_product_lists_served(fleet, replica) for replica in (0, 1)]
        assert sum(served) - sum(before) == len(statuses)
        return all(now > then for now, then in zip(served, before, strict=True))

    # Round-robin; a replica killed by another test just before may be out for fail_timeout.
    wait_until(both_served, timeout=30, message="each replica served a request")
    assert set(statuses) == {200}


def test_user_service_replicas_sign_with_one_key(fleet: Fleet, shop: Shop) -> None:
    keys = [
        httpx.get(f"{_url(fleet, 'user-service', replica)}/auth/jwks").json()["keys"]
        for replica in (0, 1)
    ]
    assert keys[0] == keys[1]
    assert len(keys[0]) >= 1
    # Whichever replica signed it, each replica takes the token.
    customer = shop.new_customer()
    for replica in (0, 1):
        me = httpx.get(
            f"{_url(fleet, 'user-service', replica)}/users/me",
            headers={"Authorization": f"Bearer {customer.access_token}"},
        )
        assert me.status_code == 200, me.text


def test_no_get_is_lost_while_a_catalog_replica_is_killed_and_restarted(
    fleet: Fleet, shop: Shop
) -> None:
    answers: list[int | str] = []
    cut: list[str] = []
    done = threading.Event()

    def browse() -> None:
        # The gateway sends a GET the killed replica refused, dropped or never answered to the
        # other one. Only a response the replica had begun to send when it died (its headers
        # written, not all of its body) cannot be taken back: the gateway cuts the client's
        # connection, and the client asks again, as an HTTP client does for a GET.
        with httpx.Client(base_url=fleet.gateway, timeout=10) as client:
            while not done.is_set():
                try:
                    answers.append(client.get("/api/products").status_code)
                except httpx.TransportError as exc:
                    cut.append(type(exc).__name__)
                    answers.append(client.get("/api/products").status_code)

    browser = threading.Thread(target=browse)
    browser.start()
    try:
        wait_until(lambda: len(answers) >= 20, timeout=30, message="browsing")
        os.kill(fleet.current_pid("product-catalog-service-2"), signal.SIGKILL)
        _await_restart(fleet, "product-catalog-service-2", "product-catalog-service", 1)
        seen = len(answers)
        wait_until(lambda: len(answers) >= seen + 20, timeout=30, message="browsing on")
    finally:
        done.set()
        browser.join(30)

    assert Counter(answers) == Counter({200: len(answers)})
    # One request at a time: at most the one in the replica's hands when it died was cut, and
    # nginx says it lost that one's body ("... while reading upstream"), not its header.
    assert len(cut) <= 1, cut
    assert not cut or "while reading upstream, client" in fleet.log()


def _place(shop: Shop, customer: Account, product_id: str, key: str) -> dict[str, object]:
    """Place an order as a careful client does: on a 5xx, a lost connection or a 409 (the same
    key still in flight), ask again with the same key until it is answered 201."""
    answered: list[httpx.Response] = []

    def placed() -> bool:
        try:
            answered.append(shop.place_order(customer, (product_id, 1), key=key))
        except httpx.HTTPError:
            return False
        response = answered[-1]
        assert response.status_code in (201, 409) or response.status_code >= 500, response.text
        return response.status_code == 201

    wait_until(placed, timeout=60, message=f"order {key} placed")
    order: dict[str, object] = answered[-1].json()
    return order


def test_no_order_is_lost_or_doubled_while_an_orders_replica_is_killed(
    fleet: Fleet, shop: Shop
) -> None:
    admin = shop.account(ADMIN_EMAIL, ADMIN_PASSWORD)
    product = shop.add_product(admin, stock=20)
    customer = shop.new_customer()
    keys = [unique("key") for _ in range(6)]

    orders = []
    for index, key in enumerate(keys):
        if index == 2:
            os.kill(fleet.current_pid("order-processing-service-2"), signal.SIGKILL)
        orders.append(_place(shop, customer, product["id"], key))

    assert len({order["id"] for order in orders}) == len(keys)
    assert {order["status"] for order in orders} == {"confirmed"}
    listed = shop.client.get(
        f"{fleet.gateway}/api/orders", headers={"Authorization": f"Bearer {customer.access_token}"}
    ).json()
    assert sorted(order["id"] for order in listed["items"]) == sorted(str(o["id"]) for o in orders)
    assert shop.product(product["id"])["stock_available"] == 20 - len(keys)
    _await_restart(fleet, "order-processing-service-2", "order-processing-service", 1)


def test_a_replica_stopped_with_sigterm_finishes_its_20_requests_in_flight_then_exits(
    fleet: Fleet, shop: Shop
) -> None:
    name, replica = "order-processing-service-2", 1
    admin = shop.account(ADMIN_EMAIL, ADMIN_PASSWORD)
    product = shop.add_product(admin, stock=20)
    customer = shop.new_customer()
    replica_url = _url(fleet, "order-processing-service", replica)
    stops_before = _stops(fleet, name)

    def place(client: httpx.Client) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {customer.access_token}",
            "Idempotency-Key": unique("key"),
        }
        return client.post("/orders", json=order_body((product["id"], 1)), headers=headers)

    with (
        httpx.Client(
            base_url=replica_url, timeout=30, limits=httpx.Limits(max_connections=20)
        ) as client,
        ThreadPoolExecutor(max_workers=20) as pool,
    ):
        answers = [pool.submit(place, client) for _ in range(20)]
        wait_until(
            lambda: _pending(fleet, customer.id) == 20,
            timeout=30,
            message="20 orders in flight at the replica",
        )
        os.kill(fleet.current_pid(name), signal.SIGTERM)
        responses = [answer.result() for answer in answers]

    assert [response.status_code for response in responses] == [201] * 20
    assert {response.json()["status"] for response in responses} == {"confirmed"}
    wait_until(
        lambda: _stops(fleet, name) == stops_before + 1, timeout=30, message=f"{name} exited"
    )
    # uvicorn ends a graceful shutdown by raising the signal again.
    assert _last_stop(fleet, name).startswith("stopped (SIGTERM); starting it again in ")
    assert shop.product(product["id"])["stock_available"] == 0
    _await_restart(fleet, name, "order-processing-service", replica)


def _pending(fleet: Fleet, user_id: str) -> int:
    rows = fleet.fetch(
        "orders", "SELECT count(*) FROM orders WHERE user_id = $1 AND status = 'pending'", user_id
    )
    return int(rows[0][0])


def _stops(fleet: Fleet, name: str) -> int:
    return sum(line.startswith("stopped (") for line in fleet.lines_of(name))


def _last_stop(fleet: Fleet, name: str) -> str:
    return [line for line in fleet.lines_of(name) if line.startswith("stopped (")][-1]


@pytest.mark.parametrize("value", ["0", "9", "two"])
def test_a_replica_count_out_of_range_is_refused_and_nothing_starts(value: str) -> None:
    refused = new_fleet()
    refused.env["FLEET_REPLICAS"] = value
    try:
        result = refused.run_fleet_command("up")

        assert result.returncode == 1
        assert result.stderr == (
            f"fleet: FLEET_REPLICAS={value!r}: give a number of replicas, 1 to 8\n"
        )
        assert not (refused.data_dir / "pgdata").exists()
    finally:
        refused.remove()


def test_two_listeners_given_one_port_are_refused_and_nothing_starts() -> None:
    refused = new_fleet({"FLEET_REPLICAS": "2"})
    shared = refused.ports["USER_SERVICE_PORT"] + 100  # the second user-service replica's
    refused.env["FLEET_NATS_PORT"] = str(shared)
    try:
        result = refused.run_fleet_command("up")

        assert result.returncode == 1
        assert result.stderr == (
            f"fleet: port(s) {shared} (USER_SERVICE_PORT + 100, FLEET_NATS_PORT) given to more "
            "than one listener; give each its own (2 replicas: ports 200 or more apart).\n"
        )
        assert not (refused.data_dir / "pgdata").exists()
    finally:
        refused.remove()


def test_a_new_fleet_never_gives_two_listeners_one_port(monkeypatch: pytest.MonkeyPatch) -> None:
    # The ports free_port hands out, in turn: the third is the second user-service replica's.
    drawn = iter([21000, 22000, 22100, 23000, 24000, 25000, 26000, 27000, 28000])
    monkeypatch.setattr(fleet_harness, "free_port", lambda: next(drawn))
    # None of them taken by a server on this machine (the session's fleet is on ports like them).
    monkeypatch.setattr(fleet_harness, "port_open", lambda port: False)

    fleet = new_fleet({"FLEET_REPLICAS": "2"})
    try:
        listeners = runner.FleetConfig.from_environ(fleet.env).ports_by_variable()

        assert fleet.ports["USER_SERVICE_PORT"] == 22000
        assert fleet.ports["CATALOG_SERVICE_PORT"] == 23000
        assert 22100 not in fleet.ports.values()
        assert len(set(listeners.values())) == len(listeners) == 4 * 2 + 4
    finally:
        fleet.remove()
