"""The service runs as a real uvicorn process configured only through its environment."""

from __future__ import annotations

import re
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from common_libs.testing import NatsServer, ServerProcess, TestTokenIssuer, free_port, wait_until
from common_libs.testing.app_checks import check_process_serves_health_and_ready
from common_libs.testing.findings import findings

from tests.integration.conftest import CLIENT_SECRET, SERVICE_ROOT
from tests.support.catalog_stub import CatalogStub
from tests.support.orders import order_body

ARGV = [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--host", "127.0.0.1"]


def test_uvicorn_process_serves_health_and_ready(
    database_url: str, nats_server: NatsServer, tmp_path: Path
) -> None:
    found = findings(
        lambda: check_process_serves_health_and_ready(
            service="order-processing-service",
            env={
                "ORDERS_DATABASE_URL": database_url,
                "ORDERS_ENVIRONMENT": "test",
                "NATS_URL": nats_server.url,
            },
            cwd=SERVICE_ROOT,
            log_path=tmp_path / "service.log",
        )
    )

    assert found == []


def _status(base: str, order_id: uuid.UUID, headers: dict[str, str]) -> str:
    order: dict[str, str] = httpx.get(f"{base}/orders/{order_id}", headers=headers).json()
    return order["status"]


def test_order_killed_after_reserve_is_confirmed_by_the_next_process(
    database_url: str,
    users_url: str,
    catalog_url: str,
    catalog: CatalogStub,
    issuer: TestTokenIssuer,
    nats_server: NatsServer,
    tmp_path: Path,
) -> None:
    product = catalog.add_product(stock=10)
    body = order_body((product, 3))
    headers = {**issuer.headers(subject=str(uuid.uuid4())), "Idempotency-Key": "sigkill-1"}
    env = {
        "ORDERS_DATABASE_URL": database_url,
        "ORDERS_ENVIRONMENT": "test",
        "ORDERS_JWKS_URL": users_url + "/auth/jwks",
        "ORDERS_USERS_URL": users_url,
        "ORDERS_CATALOG_URL": catalog_url,
        "ORDERS_SERVICE_CLIENT_SECRET": CLIENT_SECRET,
        "ORDERS_CATALOG_DEADLINE_SECONDS": "1",
        "NATS_URL": nats_server.url,
    }
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    paused = {**env, "ORDERS_TEST_PAUSE_AFTER_RESERVE_SECONDS": "60"}

    with (
        ServerProcess(
            [*ARGV, "--port", str(port)],
            env=paused,
            cwd=SERVICE_ROOT,
            log_path=tmp_path / "first.log",
            ready_url=base + "/health",
        ) as first,
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        placing = pool.submit(httpx.post, base + "/orders", json=body, headers=headers, timeout=30)
        wait_until(lambda: "saga paused after reserve" in first.output(), timeout=20)
        first.kill()
        with pytest.raises(httpx.HTTPError):
            placing.result()
    match = re.search(r"saga paused after reserve order_id=([0-9a-f-]{36})", first.output())
    assert match is not None
    order_id = uuid.UUID(match.group(1))
    # The one-step reservation sold the stock before the pause; the order is still pending.
    assert catalog.status(order_id) == "committed"

    settling = {
        **env,
        "ORDERS_PENDING_MAX_AGE_SECONDS": "2.5",
        "ORDERS_RECONCILE_INTERVAL_SECONDS": "0.2",
    }
    with ServerProcess(
        [*ARGV, "--port", str(port)],
        env=settling,
        cwd=SERVICE_ROOT,
        log_path=tmp_path / "second.log",
        ready_url=base + "/health",
    ):
        wait_until(lambda: _status(base, order_id, headers) == "confirmed", timeout=30)
        retried = httpx.post(base + "/orders", json=body, headers=headers, timeout=10)

    assert retried.status_code == 201
    assert retried.json()["id"] == str(order_id)
    assert retried.json()["status"] == "confirmed"
    assert catalog.on_hand(product) == 7
