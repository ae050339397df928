"""Event delivery by the service process's relay: through a broker outage, and with two relays.

The catalog runs as real uvicorn processes on a database of each test's own (so that no other
relay publishes its outbox) and a nats-server each test starts, stops and reads itself.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Awaitable, Iterator
from contextlib import ExitStack
from itertools import cycle
from pathlib import Path
from typing import Any

import httpx
import pytest
from common_libs.testing import PostgresServer, TestTokenIssuer, UvicornServer, free_port
from common_libs.testing.db_checks import create_migrated_database
from common_libs.testing.events import StreamEvent, stream_events, wait_for_stream_events
from common_libs.testing.nats import start_nats
from common_libs.testing.processes import eventually

from tests.integration.conftest import SERVICE_ROOT
from tests.support.events import PRODUCT_EVENTS
from tests.support.products import product_payload, reservation_body, serve_jwks

RESERVATIONS = "/inventory/reservations"
OUTAGE_SECONDS = 60


@pytest.fixture(scope="module")
def jwks_url(issuer: TestTokenIssuer) -> Iterator[str]:
    """A stub of user-service's ``GET /auth/jwks``, serving the test issuer's public key."""
    with serve_jwks(issuer.jwks()) as url:
        yield url


@pytest.fixture
def own_database_url(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> str:
    """A fresh migrated database for this test alone: no other relay publishes its outbox."""
    name = "catalog_events_" + request.node.name.removeprefix("test_")[:40]
    return create_migrated_database(postgres_server, name, alembic_ini=SERVICE_ROOT / "alembic.ini")


def catalog_process(
    *, database_url: str, nats_url: str, jwks_url: str, log_path: Path
) -> UvicornServer:
    """The catalog as a uvicorn process configured through its environment, ready on /ready."""
    env = {
        "CATALOG_ENVIRONMENT": "test",
        "CATALOG_DATABASE_URL": database_url,
        "CATALOG_JWKS_URL": jwks_url,
        "CATALOG_LOG_LEVEL": "WARNING",
        "CATALOG_LOG_JSON": "false",
        "NATS_URL": nats_url,
    }
    return UvicornServer(
        "app.main:create_app",
        factory=True,
        env=env,
        cwd=SERVICE_ROOT,
        log_path=log_path,
        ready_path="/ready",
    )


def _metric(body: str, name: str) -> float:
    """The sum of a metric's samples in a Prometheus text exposition."""
    pattern = re.compile(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", re.MULTILINE)
    return sum(float(value) for value in pattern.findall(body))


async def _backlog(client: httpx.AsyncClient) -> float:
    return _metric((await client.get("/metrics")).text, "events_outbox_backlog")


def _ids(events: list[StreamEvent]) -> Counter[str]:
    return Counter(str(event.envelope.id) for event in events)


def _versions_by_subject(events: list[StreamEvent]) -> dict[str, list[int]]:
    versions: dict[str, list[int]] = {}
    for event in events:
        versions.setdefault(event.envelope.subject, []).append(event.envelope.version)
    return versions


async def _create(
    client: httpx.AsyncClient, headers: dict[str, str], **overrides: Any
) -> dict[str, Any]:
    body = product_payload(**overrides)
    response = await _checked(client.post("/products", json=body, headers=headers))
    product: dict[str, Any] = response.json()
    return product


async def _checked(response: Awaitable[httpx.Response]) -> httpx.Response:
    """The response, which must be a success (2xx)."""
    result = await response
    assert result.is_success, result.text
    return result


@pytest.mark.waits_a_minute
async def test_events_written_while_the_broker_is_away_a_minute_are_published_once(
    own_database_url: str,
    jwks_url: str,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
    tmp_path: Path,
) -> None:
    # A broker of this test's own, stopped and started again as itself: same port, same store.
    port, store = free_port(), tmp_path / "nats"
    url = f"nats://127.0.0.1:{port}"
    broker = ExitStack()
    with ExitStack() as stack:
        stack.enter_context(broker)
        broker.enter_context(start_nats(port=port, store_dir=store))
        service = stack.enter_context(
            catalog_process(
                database_url=own_database_url,
                nats_url=url,
                jwks_url=jwks_url,
                log_path=tmp_path / "catalog.log",
            )
        )
        async with httpx.AsyncClient(base_url=service.url, timeout=10) as client:
            products = [await _create(client, admin_headers)]
            # The relay is connected and has published: the outage below breaks a live connection.
            await wait_for_stream_events(
                url, "CATALOG", lambda events: len(events) == 1, subject=PRODUCT_EVENTS
            )

            broker.close()
            restart_at = time.monotonic() + OUTAGE_SECONDS
            products += [await _create(client, admin_headers) for _ in range(3)]
            for index, product in enumerate(products):
                await _checked(
                    client.patch(
                        f"/products/{product['id']}",
                        json={"price": f"{index + 1}.50"},
                        headers=admin_headers,
                    )
                )
            body = reservation_body((products[1]["id"], 2), (products[2]["id"], 1))
            release = f"{RESERVATIONS}/{body['reservation_id']}/release"
            await _checked(client.post(RESERVATIONS, json=body, headers=service_headers))
            await _checked(client.post(release, headers=service_headers))
            await _checked(client.delete(f"/products/{products[3]['id']}", headers=admin_headers))
            # 3 created, 4 updated, 2 held and 2 released (one event per product), 1 deleted.
            changes = 3 + 4 + 2 + 2 + 1

            async def backlog_is_everything() -> bool:
                return await _backlog(client) == changes

            await eventually(backlog_is_everything, within=20, message="backlog of every change")
            assert (await client.get("/ready")).status_code == 200

            await eventually(
                lambda: time.monotonic() >= restart_at,
                within=OUTAGE_SECONDS + 10,
                message="a minute without the broker",
            )
            assert await _backlog(client) == changes
            assert (await client.get("/ready")).status_code == 200
            broker.enter_context(start_nats(port=port, store_dir=store))

            await wait_for_stream_events(
                url,
                "CATALOG",
                lambda events: len(events) >= 1 + changes,
                subject=PRODUCT_EVENTS,
                within=30,
                message="every change published after the broker came back",
            )

            async def backlog_is_empty() -> bool:
                return await _backlog(client) == 0

            await eventually(backlog_is_empty, within=10, message="outbox empty")
            # The events by id, once more after the backlog is empty: nothing came twice.
            events = await stream_events(url, "CATALOG", subject=PRODUCT_EVENTS)

    counts = _ids(events)
    assert len(counts) == 1 + changes
    assert set(counts.values()) == {1}
    for subject, versions in _versions_by_subject(events).items():
        assert versions == list(range(1, len(versions) + 1)), subject


async def test_two_relays_on_one_database_publish_every_event_once_in_order(
    own_database_url: str,
    jwks_url: str,
    admin_headers: dict[str, str],
    service_headers: dict[str, str],
    tmp_path: Path,
) -> None:
    with ExitStack() as stack:
        broker_url = stack.enter_context(start_nats()).url
        services = [
            stack.enter_context(
                catalog_process(
                    database_url=own_database_url,
                    nats_url=broker_url,
                    jwks_url=jwks_url,
                    log_path=tmp_path / f"catalog-{name}.log",
                )
            )
            for name in ("a", "b")
        ]
        async with (
            httpx.AsyncClient(base_url=services[0].url, timeout=30) as a,
            httpx.AsyncClient(base_url=services[1].url, timeout=30) as b,
        ):
            ids = [(await _create(a, admin_headers, stock=1000))["id"] for _ in range(4)]
            limit = asyncio.Semaphore(16)

            async def patch(client: httpx.AsyncClient, number: int) -> int:
                async with limit:
                    response = await client.patch(
                        f"/products/{ids[number % 4]}",
                        json={"name": f"Edit {number}", "stock": 1000 + number},
                        headers=admin_headers,
                    )
                return 1 if response.status_code == 200 else 0

            async def hold(client: httpx.AsyncClient, number: int) -> int:
                # Two products per transaction: one write_events call for both, versions locked
                # in a stable order, while PATCHes of each run in the other process.
                body = reservation_body((ids[number % 4], 1), (ids[(number + 1) % 4], 1))
                async with limit:
                    response = await client.post(RESERVATIONS, json=body, headers=service_headers)
                return 2 if response.status_code == 201 else 0

            clients = cycle([a, b])
            work = [patch(next(clients), number) for number in range(200)]
            work += [hold(next(clients), number) for number in range(40)]
            changed = await asyncio.gather(*work)
            expected = len(ids) + sum(changed)

            events = await wait_for_stream_events(
                broker_url,
                "CATALOG",
                lambda events: len(events) >= expected,
                subject=PRODUCT_EVENTS,
                within=30,
                message=f"{expected} events",
            )
            # Each relay's count of acknowledged publishes (a duplicate publish counts too).
            published: list[float] = []

            async def all_counted() -> bool:
                published[:] = [
                    _metric((await client.get("/metrics")).text, "events_published_total")
                    for client in (a, b)
                ]
                return sum(published) >= expected

            await eventually(all_counted, within=10, message="every publish counted")
            latest = {
                product_id: (await a.get(f"/products/{product_id}")).json() for product_id in ids
            }

    counts = _ids(events)
    assert sum(changed) == 200 + 2 * 40
    assert len(events) == expected
    assert set(counts.values()) == {1}
    versions = _versions_by_subject(events)
    assert set(versions) == set(ids)
    for product_id in ids:
        assert versions[product_id] == list(range(1, len(versions[product_id]) + 1))
        last = [event for event in events if event.envelope.subject == product_id][-1]
        assert last.envelope.data == latest[product_id]
    # Both relays took part, and between them published each event once (no duplicates).
    assert sum(published) == expected
    assert all(count > 0 for count in published), published
