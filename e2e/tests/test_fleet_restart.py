"""Data survives `make down` + `make up`, and the demo catalog is loaded only the first time."""

from __future__ import annotations

import signal

import httpx

from tests.fleet import new_fleet
from tests.support.shop import Endpoints, Shop


def test_restart_on_the_same_data_keeps_users_and_products_and_loads_the_demo_once() -> None:
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
            assert "demo catalog: loaded at" in second.log()
            assert "not loaded again" in second.log()
        finally:
            second.stop()
    finally:
        first.stop()
        first.remove()


def _count_products(shop: Shop) -> int:
    count, cursor = 0, None
    while True:
        params: dict[str, str | int] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = shop.client.get(f"{shop.endpoints.catalog}/products", params=params).json()
        count += len(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return count
