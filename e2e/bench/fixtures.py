"""What the measurements need in the fleet: products and logged-in customers.

Made through the services' public API, directly (not through the gateway, whose auth rate limit
a running fleet may keep low): the admin from the fleet's settings adds two products, one to
read and one with a billion items in stock to order, and customers register and log in.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import fleet as runner
import httpx

from bench.fleet_access import Target

__all__ = ["Fixtures", "make_fixtures", "new_customer_token"]

PASSWORD = "bench-correct-horse-battery"


@dataclass(frozen=True)
class Fixtures:
    """Ids and tokens the measurements use."""

    read_product: dict[str, Any]
    order_product: dict[str, Any]
    customer_tokens: list[str]
    admin_token: str


def _log_in(client: httpx.Client, users: str, email: str, password: str) -> str:
    response = client.post(f"{users}/auth/token", data={"username": email, "password": password})
    response.raise_for_status()
    return str(response.json()["access_token"])


def new_customer_token(target: Target) -> str:
    """Register a new customer and return its access token."""
    users = target.url(runner.USERS)
    email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
    body = {"email": email, "password": PASSWORD, "full_name": "Bench Customer"}
    with httpx.Client(timeout=60) as client:
        client.post(f"{users}/users", json=body).raise_for_status()
        return _log_in(client, users, email, PASSWORD)


def _add_product(client: httpx.Client, target: Target, token: str, *, stock: int) -> Any:
    sku = f"BENCH-{uuid.uuid4().hex[:10].upper()}"
    body = {
        "sku": sku,
        "name": f"Walnut writing desk {sku}",
        "description": "A solid walnut writing desk with two drawers and a cable tray, "
        "finished in hard-wax oil; pairs well with a linen chair.",
        "category": "bench-office",
        "price": "349.00",
        "stock": stock,
    }
    response = client.post(
        f"{target.url(runner.CATALOG)}/products",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )
    response.raise_for_status()
    return response.json()


def make_fixtures(target: Target, *, customers: int) -> Fixtures:
    """Two products and ``customers`` logged-in customers (registered a few at a time)."""
    with httpx.Client(timeout=60) as client:
        admin = _log_in(client, target.url(runner.USERS), target.admin_email, target.admin_password)
        read_product = _add_product(client, target, admin, stock=500)
        order_product = _add_product(client, target, admin, stock=1_000_000_000)
    with ThreadPoolExecutor(max_workers=4) as pool:
        tokens = list(pool.map(lambda _: new_customer_token(target), range(customers)))
    return Fixtures(read_product, order_product, tokens, admin)
