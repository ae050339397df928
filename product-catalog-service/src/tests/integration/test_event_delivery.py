"""Event delivery by the service process's relay: through a broker outage, and with two relays.

The catalog runs as real uvicorn processes on a database of each test's own (so that no other
relay publishes its outbox) and a nats-server each test starts, stops and reads itself.

The relay coalesces a product's updates (of those in one pass, only the latest is sent): what
"every change" means on the stream is each product's created and deleted events and, of its
updates, at least the latest, with its final state, versions increasing, nothing twice; and,
with the broker up throughout, every change written either on the stream or counted as coalesced.
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


def _metric(body: str, name: str, labels: str = "") -> float:
    """The sum of a metric's samples in a Prometheus text exposition (those whose labels include
    ``labels``, as written there: ``outcome="coalesced"``)."""
    pattern = re.compile(rf"^{re.escape(name)}(?:{{([^}}]*)}})? (\S+)$", re.MULTILINE)
    return sum(float(value) for found, value in pattern.findall(body) if labels in found)


async def _coalesced(client: httpx.AsyncClient) -> float:
    body = (await client.get("/metrics")).text
    return _metric(body, "events_published_total", 'outcome="coalesced"')


def _assert_each_products_latest_went_out_once_in_order(
    events: list[StreamEvent], final: dict[str, tuple[int, dict[str, Any]]]
) -> None:
    """Nothing twice; per product versions increasing from its creation (never coalesced) to
    its final version, whose event carries its final data."""
    assert set(_ids(events).values()) == {1}
    versions = _versions_by_subject(events)
    assert set(versions) == set(final)
    for product_id, (version, data) in final.items():
        assert versions[product_id][0] == 1, product_id
        assert versions[product_id] == sorted(set(versions[product_id])), product_id
        assert versions[product_id][-1] == version, product_id
        last = [event for event in events if event.envelope.subject == product_id][-1]
        assert last.envelope.data == data, product_id


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

            async def backlog_is_empty() -> bool:
                return await _backlog(client) == 0

            await eventually(
                backlog_is_empty, within=30, message="every change out after the broker came back"
            )
            events = await stream_events(url, "CATALOG", subject=PRODUCT_EVENTS)
            final = {
                product["id"]: (version, (await client.get(f"/products/{product['id']}")).json())
                for product, version in zip(products[:3], (2, 4, 4), strict=True)
            }
            final[products[3]["id"]] = (3, {"id": products[3]["id"]})

    # Each product's latest change reached the stream. (How many of the others did depends on
    # the passes the relay tried during the outage: the client keeps what they sent for the
    # reconnection, the later pass finds them coalesced.)
    _assert_each_products_latest_went_out_once_in_order(events, final)


async def test_two_relays_on_one_database_publish_each_products_changes_once_in_order(
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
            # Each product's version: 1 at its creation, one more per change of it.
            version = Counter(dict.fromkeys(ids, 1))

            async def patch(client: httpx.AsyncClient, number: int) -> int:
                async with limit:
                    response = await client.patch(
                        f"/products/{ids[number % 4]}",
                        json={"name": f"Edit {number}", "stock": 1000 + number},
                        headers=admin_headers,
                    )
                if response.status_code != 200:
                    return 0
                version[ids[number % 4]] += 1
                return 1

            async def hold(client: httpx.AsyncClient, number: int) -> int:
                # Two products per transaction: one write_events call for both, versions locked
                # in a stable order, while PATCHes of each run in the other process.
                body = reservation_body((ids[number % 4], 1), (ids[(number + 1) % 4], 1))
                async with limit:
                    response = await client.post(RESERVATIONS, json=body, headers=service_headers)
                if response.status_code != 201:
                    return 0
                version.update((ids[number % 4], ids[(number + 1) % 4]))
                return 2

            clients = cycle([a, b])
            work = [patch(next(clients), number) for number in range(200)]
            work += [hold(next(clients), number) for number in range(40)]
            changed = await asyncio.gather(*work)
            expected = len(ids) + sum(changed)

            # Each relay's count of the events it sent and the broker acknowledged (a
            # duplicate publish counts too) and of those it coalesced.
            published: list[float] = []

            async def all_counted() -> bool:
                published[:] = [
                    _metric((await client.get("/metrics")).text, "events_published_total")
                    for client in (a, b)
                ]
                return sum(published) >= expected

            await eventually(all_counted, within=30, message=f"{expected} events counted")
            events = await stream_events(broker_url, "CATALOG", subject=PRODUCT_EVENTS)
            coalesced = await _coalesced(a) + await _coalesced(b)
            final = {
                product_id: (version[product_id], (await a.get(f"/products/{product_id}")).json())
                for product_id in ids
            }

    assert sum(changed) == 200 + 2 * 40
    assert len(events) + coalesced == expected
    _assert_each_products_latest_went_out_once_in_order(events, final)
    # Both relays took part, and between them sent or coalesced each event once (a duplicate
    # publish would count one more).
    assert sum(published) == expected
    assert all(count > 0 for count in published), published
