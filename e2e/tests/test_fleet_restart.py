"""Data survives `make down` + `make up` (PostgreSQL's, Prometheus's), and the demo catalog is
loaded only the first time."""

from __future__ import annotations

import signal

import httpx
from common_libs.testing import wait_until

from tests.fleet import Fleet, new_fleet
from tests.support.shop import Endpoints, Shop


def test_restart_keeps_users_products_and_metrics_and_loads_the_demo_once() -> None:
    admin_env = {"FLEET_ADMIN_EMAIL": "owner@example.com", "FLEET_ADMIN_PASSWORD": "owner-pass-123"}
    first = new_fleet(admin_env)
    try:
        first.start()
        with httpx.Client(timeout=30) as client:
            shop = Shop(Endpoints.through_gateway(first.gateway), client)
            admin = shop.account("owner@example.com", "owner-pass-123")
            product = shop.add_product(admin, stock=5)
            customer = shop.new_customer()
            total_before = _count_products(shop)
        scraped_at = _first_self_scrape(first)
        assert first.stop(signal.SIGINT) == 0
        assert "demo catalog: loaded" in first.log()

        second = new_fleet(admin_env, data_dir=first.data_dir)
        try:
            second.start()
            with httpx.Client(timeout=30) as client:
                shop = Shop(Endpoints.through_gateway(second.gateway), client)
                again = shop.account(customer.email, customer.password)
                assert again.access_token
                assert shop.product(product["id"])["name"] == product["name"]
                assert _count_products(shop) == total_before
            # The new Prometheus (on another port) reads the first one's samples from the TSDB.
            assert second.query('up{service="prometheus"}', at=scraped_at) != []
            assert "demo catalog: loaded at" in second.log()
            assert "not loaded again" in second.log()
        finally:
            second.stop()
    finally:
        first.stop()
        first.remove()


def _first_self_scrape(fleet: Fleet) -> float:
    """When the fleet's Prometheus first scraped itself (within one 5 s interval of the start)."""
    wait_until(
        lambda: fleet.query('up{service="prometheus"}') != [],
        timeout=30,
        interval=0.2,
        message="Prometheus scrapes itself",
    )
    return float(fleet.query('up{service="prometheus"}')[0]["value"][0])


def _count_products(shop: Shop) -> int:
    count, cursor = 0, None
    while True:
        params: dict[str, str | int] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = shop.client.get(f"{shop.endpoints.catalog}/products", params=params).json()
        count += len(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return count
