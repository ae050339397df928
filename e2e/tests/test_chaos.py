"""The chaos suite: `make up` with 2 replicas of each service under a mixed client load through the
gateway (browse, search, log in, order with an Idempotency-Key, chat), and one fault at a time.

A third order-processing-service process runs in a network namespace of its own, reaching
PostgreSQL, NATS and user-service over one link and the catalog over another, and takes a share
of the orders directly: the faults of the link between orders and the catalog are injected there.

After each fault the fleet must recover on its own, and with the load paused the invariants must
hold: no request answered 500; no order left ``pending`` once the reconciler has had its turn;
every order a client was answered ``201`` confirmed, once, under its key; every product's
available + held + sold stock equal to what it started with, and its sold stock equal to what the
confirmed orders hold; each confirmed order's ``orders.order.confirmed`` event in the ORDERS stream
exactly once (nothing consumes ORDERS yet); chat's read model of those products equal to the
catalog. Each fault's figures are printed in the table at the end of the run
(``pytest_terminal_summary`` in ``conftest.py``) and kept in the README's "Resilience" section.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import fleet as runner
import httpx
import pytest
from common_libs.testing import LlmServer, wait_until
from common_libs.testing.events import stream_events

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, LLM_API_KEY, replicated_fleet_environment
from tests.fleet import Fleet, pid_alive, port_open, running_fleet
from tests.support.chaos import REPORT, Attempt, Load, Namespace, Relay, Window
from tests.support.shop import Account, Endpoints, Shop, bearer

_NATS_PID = re.compile(r"NATS started \(pid=(\d+)\)")
OUTAGE_SECONDS = 5.0
# The orders placed directly with the orders process in the namespace, over the faulty link.
LINK_ORDERS = "order (namespace)"
INITIAL_STOCK = 100_000
# The order service as this suite runs it: a 3 s catalog deadline, and a reconciler that takes
# over an order pending for longer than 7 s (the service requires more than twice the deadline),
# looking every half second.
CATALOG_DEADLINE_SECONDS = 3
ORDERS_SETTINGS = {
    "ORDERS_CATALOG_DEADLINE_SECONDS": str(CATALOG_DEADLINE_SECONDS),
    "ORDERS_PENDING_MAX_AGE_SECONDS": str(2 * CATALOG_DEADLINE_SECONDS + 1),
    "ORDERS_RECONCILE_INTERVAL_SECONDS": "0.5",
}
_PORT_OF = {
    "user-service": "USER_SERVICE_PORT",
    "product-catalog-service": "CATALOG_SERVICE_PORT",
    "order-processing-service": "ORDER_SERVICE_PORT",
    "chat-llm-service": "CHAT_SERVICE_PORT",
}


@dataclass
class Stage:
    fleet: Fleet
    load: Load
    shop: Shop
    catalog_link: Relay
    namespace: Namespace
    product_ids: list[str]
    customers: list[Account]


@pytest.fixture(scope="module")
def fleet(fake_llm: LlmServer) -> Iterator[Fleet]:
    with running_fleet(
        replicated_fleet_environment(
            OPENAI_BASE_URL=fake_llm.base_url,
            OPENAI_API_KEY=LLM_API_KEY,
            # Logins and orders too ask faster than the gateway lets one address do by default.
            GATEWAY_AUTH_RATE_LIMIT="100000r/s",
            GATEWAY_AUTH_RATE_BURST="100000",
            GATEWAY_ORDER_RATE_LIMIT="100000r/s",
            GATEWAY_ORDER_RATE_BURST="100000",
            CHAT_DAILY_TOKEN_QUOTA="100000000",
            **ORDERS_SETTINGS,
        )
    ) as running:
        yield running
        # Ctrl-C stops every process the fleet started, those it started again too, and frees
        # every port.
        pids = running.pids()
        assert running.stop(signal.SIGINT) == 0
        wait_until(
            lambda: not any(pid_alive(pid) for pid in pids),
            timeout=10,
            message="every process the fleet started exits",
        )
        assert [port for port in running.ports.values() if port_open(port)] == []


@pytest.fixture(scope="module")
def stage(fleet: Fleet) -> Iterator[Stage]:
    with httpx.Client(timeout=30) as client:
        shop = Shop(Endpoints.through_gateway(fleet.gateway), client)
        admin = shop.account(ADMIN_EMAIL, ADMIN_PASSWORD)
        product_ids = [shop.add_product(admin, stock=INITIAL_STOCK)["id"] for _ in range(3)]
        customers = [shop.new_customer() for _ in range(3)]
        with Namespace(links=2) as namespace, _linked(fleet, namespace) as (orders_url, link):
            load = Load()
            _start_load(load, fleet, orders_url, product_ids, customers)
            try:
                load.start()
                wait_until(
                    lambda: load.served_since(0) == load.kinds, timeout=60, message="load served"
                )
                yield Stage(fleet, load, shop, link, namespace, product_ids, customers)
            finally:
                load.stop()


@contextmanager
def _linked(fleet: Fleet, namespace: Namespace) -> Iterator[tuple[str, Relay]]:
    """A third orders process inside ``namespace``: PostgreSQL, NATS and user-service over link 0,
    the catalog (its first replica) over link 1. Yields its URL and link 1's relay."""
    ports = fleet.ports
    near = namespace.outside(0)
    with (
        Relay(near, ports["FLEET_PG_PORT"]) as database,
        Relay(near, ports["FLEET_NATS_PORT"]) as broker,
        Relay(near, ports["USER_SERVICE_PORT"]) as users,
        Relay(namespace.outside(1), ports["CATALOG_SERVICE_PORT"]) as catalog,
    ):
        config = runner.FleetConfig.from_environ(fleet.env)
        secrets = runner.local_secrets(config)
        env = {
            **fleet.env,
            **runner.service_env(config, runner.ORDERS, secrets),
            "ORDERS_DATABASE_URL": f"postgresql+asyncpg://postgres@{near}:{database.port}/orders",
            "NATS_URL": f"nats://{near}:{broker.port}",
            "ORDERS_JWKS_URL": f"http://{near}:{users.port}/auth/jwks",
            "ORDERS_USERS_URL": f"http://{near}:{users.port}",
            "ORDERS_CATALOG_URL": f"http://{namespace.outside(1)}:{catalog.port}",
        }
        command = runner.service_command(config, runner.ORDERS)
        command[command.index("--host") + 1] = namespace.inside(0)
        url = f"http://{namespace.inside(0)}:{config.port(runner.ORDERS)}"
        log_path = fleet.data_dir / "logs" / "orders-in-namespace.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                namespace.command(command),
                cwd=runner.ORDERS.workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until(
                lambda: _answers(f"{url}/ready", process),
                timeout=60,
                message=f"orders in the namespace ready (log: {log_path})",
            )
            yield url, catalog
        finally:
            process.terminate()
            process.wait(30)


def _answers(url: str, process: subprocess.Popen[bytes] | None = None) -> bool:
    if process is not None and process.poll() is not None:
        raise RuntimeError(f"exited with {process.returncode} before answering {url}")
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _start_load(
    load: Load, fleet: Fleet, orders_url: str, product_ids: list[str], customers: list[Account]
) -> None:
    buyer, other_buyer, talker = customers
    gateway = fleet.gateway
    browsed = iter(range(10**9))

    def browse(client: httpx.Client) -> httpx.Response:
        if next(browsed) % 2:
            return client.get(f"/api/products/{product_ids[0]}")
        return client.get("/api/products", params={"limit": 20})

    def search(client: httpx.Client) -> httpx.Response:
        return client.get("/api/products", params={"q": "lantern"})

    def log_in(client: httpx.Client) -> httpx.Response:
        form = {"username": talker.email, "password": talker.password}
        return client.post("/api/auth/token", data=form)

    def chat(client: httpx.Client) -> httpx.Response:
        question = {"message": "Which lanterns do you have?"}
        return client.post(
            "/api/chat/generate_response", json=question, headers=bearer(talker.access_token)
        )

    # Seconds between one client's requests: logging in hashes a password, a chat turn asks the
    # LLM; the load stays within what two cores serve beside the fleet.
    for kind, ask, pace in (
        ("browse", browse, 0.1),
        ("search", search, 0.2),
        ("log in", log_in, 0.5),
        ("chat", chat, 0.5),
    ):
        load.run(kind, gateway, ask, ok={200}, pace=pace)
    load.run_orders("order", gateway, "/api/orders", buyer.access_token, product_ids, pace=0.1)
    load.run_orders(
        LINK_ORDERS, orders_url, "/orders", other_buyer.access_token, product_ids, pace=0.2
    )


# --- the faults: each returns once what it stopped is back ---------------------------------------


def _replica_ready(fleet: Fleet, name: str) -> bool:
    service, replica = name.rsplit("-", 1)
    return _answers(f"{fleet.replica_url(_PORT_OF[service], int(replica) - 1)}/ready")


def _signal_replica(name: str, sig: signal.Signals, stage: Stage) -> None:
    fleet = stage.fleet
    restarts = fleet.restarts(name)
    os.kill(fleet.current_pid(name), sig)
    wait_until(lambda: fleet.restarts(name) > restarts, timeout=60, message=f"{name} started again")
    wait_until(partial(_replica_ready, fleet, name), timeout=60, message=f"{name} ready again")


def _all_ready(fleet: Fleet) -> bool:
    return all(
        _answers(f"{fleet.replica_url(port, replica)}/ready")
        for port in _PORT_OF.values()
        for replica in (0, 1)
    )


def _stopped_for_a_while(stage: Stage, name: str, pid: int, sig: signal.Signals) -> None:
    """Stop one of the servers the runner started (its own child), keep it down for
    OUTAGE_SECONDS, then let the runner start it again as it does for any that exits.

    The runner is paused meanwhile (SIGSTOP) so that it does not start the server again after
    its 1 s backoff; the services, nginx and the other servers run on without it.
    """
    fleet = stage.fleet
    assert fleet.process is not None
    restarts = fleet.restarts(name)
    os.kill(fleet.process.pid, signal.SIGSTOP)
    try:
        os.kill(pid, sig)
        wait_until(lambda: not pid_alive(pid), timeout=30, message=f"{name} stopped")
        time.sleep(OUTAGE_SECONDS)  # the outage itself
    finally:
        os.kill(fleet.process.pid, signal.SIGCONT)
    wait_until(lambda: fleet.restarts(name) > restarts, timeout=60, message=f"{name} started again")
    wait_until(partial(_all_ready, fleet), timeout=60, message=f"every replica ready after {name}")


def _stop_postgres(stage: Stage) -> None:
    postmaster = stage.fleet.postmaster_pid()
    assert postmaster is not None
    # SIGINT is PostgreSQL's fast shutdown: sessions ended, transactions rolled back.
    _stopped_for_a_while(stage, "postgresql", postmaster, signal.SIGINT)


def _stop_nats(stage: Stage) -> None:
    fleet = stage.fleet
    started = [int(pid) for pid in _NATS_PID.findall(fleet.log())]
    pid = fleet.current_pid("nats") if fleet.restarts("nats") else started[0]
    _stopped_for_a_while(stage, "nats", pid, signal.SIGTERM)


def _through_the_link(stage: Stage, start: float, end: float) -> list[Attempt]:
    """The orders through the namespace's orders process that ended from ``start`` to ``end``,
    those already in flight at ``start`` included (``Load.since``)."""
    return [
        attempt
        for attempt in stage.load.since(start)
        if attempt.kind == LINK_ORDERS and attempt.ended <= end
    ]


def _slow_link(stage: Stage) -> None:
    start = time.monotonic()
    stage.catalog_link.delay = 0.2
    try:
        time.sleep(OUTAGE_SECONDS)  # the fault itself
    finally:
        stage.catalog_link.delay = 0.0
    # Each order placed after the delay was set made its call to the catalog with it: each took
    # 0.2 s longer. (An order in flight when it was set may have had its answer already.)
    slowed = [a for a in _through_the_link(stage, start, time.monotonic()) if a.started >= start]
    assert slowed, "no order through the slow link"
    assert min(attempt.ended - attempt.started for attempt in slowed) >= 0.2, slowed


def _cut_link(stage: Stage) -> None:
    start = time.monotonic()
    with stage.namespace.cut(1):
        time.sleep(OUTAGE_SECONDS)  # the fault itself
    # An order that asked the catalog meanwhile waited for its deadline, and was refused.
    cut_off = _through_the_link(stage, start, time.monotonic())
    assert any(
        a.outcome == "503" and a.ended - a.started >= CATALOG_DEADLINE_SECONDS for a in cut_off
    ), cut_off


FAULTS: dict[str, Callable[[Stage], None]] = {
    "SIGKILL user-service-1": partial(_signal_replica, "user-service-1", signal.SIGKILL),
    "SIGKILL product-catalog-service-1": partial(
        _signal_replica, "product-catalog-service-1", signal.SIGKILL
    ),
    "SIGKILL order-processing-service-2": partial(
        _signal_replica, "order-processing-service-2", signal.SIGKILL
    ),
    "SIGKILL chat-llm-service-1": partial(_signal_replica, "chat-llm-service-1", signal.SIGKILL),
    "SIGTERM order-processing-service-1 (rolling restart)": partial(
        _signal_replica, "order-processing-service-1", signal.SIGTERM
    ),
    "PostgreSQL stopped for 5 s": _stop_postgres,
    "NATS stopped for 5 s": _stop_nats,
    "orders -> catalog: 200 ms added for 5 s": _slow_link,
    "orders -> catalog: link cut for 5 s": _cut_link,
}
# The table lists the faults in this order, whatever order they ran in.
REPORT.update(dict.fromkeys(FAULTS))


@pytest.mark.parametrize("fault", list(FAULTS))
def test_the_fleet_recovers_and_nothing_is_lost_or_doubled(stage: Stage, fault: str) -> None:
    load = stage.load
    start = time.monotonic()
    FAULTS[fault](stage)
    back = time.monotonic()
    wait_until(
        lambda: load.served_since(back) == load.kinds,
        timeout=60,
        message="every kind of request served again",
    )
    load.pause()
    try:
        window = Window(fault, start, load.since(start))
        REPORT[fault] = window
        assert [a for a in window.attempts if a.outcome == "500"] == []
        _assert_invariants(stage)
    finally:
        load.start()


def _assert_invariants(stage: Stage) -> None:
    fleet, ids = stage.fleet, stage.product_ids
    users = [customer.id for customer in stage.customers]

    def settled() -> bool:
        counts = [
            fleet.fetch("orders", "SELECT count(*) FROM orders WHERE status = 'pending'"),
            fleet.fetch(
                "catalog",
                "SELECT coalesce(sum(held), 0) FROM products WHERE id = ANY($1::uuid[])",
                ids,
            ),
            fleet.fetch("orders", "SELECT count(*) FROM outbox"),
            fleet.fetch("catalog", "SELECT count(*) FROM outbox"),
        ]
        # Pending orders, stock held, events not yet acknowledged by the broker: none.
        return all(rows[0][0] == 0 for rows in counts)

    # The reconciler settles an order pending for longer than 7 s; a reservation left without
    # an order expires.
    wait_until(settled, timeout=60, message="no order pending, no stock held, no event unsent")

    stock = {
        str(row["id"]): (row["stock"], int(row["sold"]))
        for row in fleet.fetch(
            "catalog",
            """
            SELECT p.id, p.stock,
                   coalesce((SELECT sum(i.quantity) FROM reservation_items i
                               JOIN reservations r ON r.id = i.reservation_id
                              WHERE i.product_id = p.id AND r.status = 'committed'), 0) AS sold
              FROM products p WHERE p.id = ANY($1::uuid[])
            """,
            ids,
        )
    }
    confirmed = fleet.fetch(
        "orders",
        """
        SELECT o.id, k.key, i.product_id, i.quantity
          FROM orders o
          JOIN order_items i ON i.order_id = o.id
          LEFT JOIN idempotency_keys k ON k.order_id = o.id
         WHERE o.status = 'confirmed' AND o.user_id = ANY($1::text[])
        """,
        users,
    )
    sold_to_orders = Counter[str]()
    for row in confirmed:
        sold_to_orders[str(row["product_id"])] += row["quantity"]
    for product_id in ids:
        on_hand, sold = stock[product_id]
        assert on_hand + sold == INITIAL_STOCK, product_id
        assert sold == sold_to_orders[product_id], product_id

    # Every 201 a client saw is a confirmed order under its key; every confirmed order is one a
    # client was answered for, or the one it is still asking about with the same key.
    by_order = {str(row["id"]): row["key"] for row in confirmed}
    placed = {p.order_id: p.key for p in stage.load.placed}
    assert {order: by_order.get(order) for order in placed} == placed
    unanswered = {order: key for order, key in by_order.items() if order not in placed}
    assert set(unanswered.values()) <= set(stage.load.open_keys.values()), unanswered

    events = asyncio.run(stream_events(fleet.nats_url, "ORDERS", subject="orders.order.confirmed"))
    per_order = Counter(str(event.envelope.subject) for event in events)
    assert {order: per_order[order] for order in by_order} == dict.fromkeys(by_order, 1)

    def read_model_current() -> bool:
        catalog = fleet.fetch(
            "catalog",
            "SELECT id, stock - held AS available FROM products WHERE id = ANY($1::uuid[])",
            ids,
        )
        chat = fleet.fetch(
            "chat",
            "SELECT id, stock_available AS available FROM catalog_products "
            "WHERE id = ANY($1::uuid[])",
            ids,
        )
        return {r["id"]: r["available"] for r in catalog} == {r["id"]: r["available"] for r in chat}

    wait_until(read_model_current, timeout=30, message="chat's read model equal to the catalog")
