"""The limits per user and per account, through the gateway: one user's burst or one account's
failed logins are refused, while other users behind the same client address go on; and the
gateway's own limit per address, in front of the fleet's services."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from common_libs.testing import free_port, wait_until

from tests.fleet import ROOT, Fleet
from tests.support.shop import Account, Endpoints, Shop

pytestmark = pytest.mark.usefixtures("first_order")

# The fleet's defaults (docs/API.md, "Rate limits").
ORDERS_PER_MINUTE = 10
FAILED_LOGINS_PER_MINUTE = 5


def test_one_users_burst_of_orders_is_refused_while_another_user_behind_the_address_orders(
    shop: Shop, admin: Account
) -> None:
    product = shop.add_product(admin, stock=100)
    hasty, patient = shop.new_customer(), shop.new_customer()

    burst = [shop.place_order(hasty, (product["id"], 1)) for _ in range(ORDERS_PER_MINUTE + 1)]
    other = shop.place_order(patient, (product["id"], 1))

    assert [r.status_code for r in burst] == [201] * ORDERS_PER_MINUTE + [429]
    refused = burst[-1]
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "urn:fleet:common:rate-limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["ratelimit-policy"] == '"orders";q=10;w=60'
    assert refused.headers["ratelimit"] == f'"orders";r=0;t={refused.headers["retry-after"]}'
    assert burst[0].headers["ratelimit"].startswith('"orders";r=9;t=')
    assert other.status_code == 201, other.text
    assert shop.product(product["id"])["stock_available"] == 100 - ORDERS_PER_MINUTE - 1


def test_failed_logins_of_one_account_from_many_addresses_end_in_429_for_it_alone(
    shop: Shop,
) -> None:
    victim, bystander = shop.new_customer(), shop.new_customer()

    guesses = [
        shop.log_in(victim.email, f"guess {n}", **{"X-Forwarded-For": f"198.51.100.{n}"})
        for n in range(FAILED_LOGINS_PER_MINUTE)
    ]
    with_the_password = shop.log_in(victim.email, victim.password)
    other = shop.log_in(bystander.email, bystander.password)

    assert [r.status_code for r in guesses] == [401] * FAILED_LOGINS_PER_MINUTE
    assert with_the_password.status_code == 429, with_the_password.text
    assert with_the_password.headers["content-type"] == "application/problem+json"
    assert with_the_password.json()["type"] == "urn:fleet:common:rate-limited"
    assert 1 <= int(with_the_password.headers["retry-after"]) <= 60
    assert with_the_password.headers["ratelimit-policy"] == '"logins";q=5;w=60'
    assert with_the_password.headers["ratelimit"] == (
        f'"logins";r=0;t={with_the_password.headers["retry-after"]}'
    )
    assert "access_token" not in with_the_password.text
    assert other.status_code == 200


@pytest.fixture
def strict_gateway(fleet: Fleet, tmp_path: Path) -> Iterator[str]:
    """A second gateway in front of the fleet's services, from the same configuration, with a
    limit of 1 order a minute per address (burst 1): its 429 is reached in three requests without
    touching the limits of the fleet's own gateway, which the other tests share."""
    port = free_port()
    upstreams = {
        "USER_SERVICE_UPSTREAM": "USER_SERVICE_PORT",
        "CATALOG_SERVICE_UPSTREAM": "CATALOG_SERVICE_PORT",
        "ORDER_SERVICE_UPSTREAM": "ORDER_SERVICE_PORT",
        "CHAT_SERVICE_UPSTREAM": "CHAT_SERVICE_PORT",
    }
    env = {
        **os.environ,
        "PATH": f"{os.environ.get('PATH', '')}:/usr/sbin",
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "GATEWAY_ORDER_RATE_LIMIT": "1r/m",
        "GATEWAY_ORDER_RATE_BURST": "1",
        **{name: f"127.0.0.1:{fleet.ports[variable]}" for name, variable in upstreams.items()},
    }
    log = (tmp_path / "gateway.log").open("wb")
    gateway = subprocess.Popen(
        [sys.executable, "scripts/run_local.py", "--workdir", str(tmp_path / "gateway")],
        cwd=ROOT / "api-gateway-service",
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert gateway.poll() is None, (tmp_path / "gateway.log").read_text()
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(answers, timeout=30, message="the second gateway answers /healthz")
        yield url
    finally:
        gateway.terminate()
        gateway.wait(timeout=30)
        log.close()


def test_the_gateways_own_429_names_its_limit_and_its_type(
    strict_gateway: str, shop: Shop, admin: Account, client: httpx.Client
) -> None:
    product = shop.add_product(admin, stock=10)
    customer = shop.new_customer()
    strict = Shop(Endpoints.through_gateway(strict_gateway), client)

    answers = [strict.place_order(customer, (product["id"], 1)) for _ in range(3)]

    # The first two reached the order service and placed orders; the third stopped at the gateway.
    assert [r.status_code for r in answers[:2]] == [201, 201], answers[1].text
    refused = answers[2]
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["type"] == "urn:fleet:common:rate-limited"
    assert problem["request_id"] == refused.headers["x-request-id"]
    # 1r/m lets one request through every 62.5 s in nginx: 63 whole seconds.
    assert refused.headers["retry-after"] == "63"
    assert refused.headers["ratelimit-policy"] == '"per-address-orders";q=1;w=60'
    assert refused.headers["ratelimit"] == '"per-address-orders";r=0;t=63'
    assert shop.product(product["id"])["stock_available"] == 10 - 2
