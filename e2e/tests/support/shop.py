"""A small client of the fleet's public API: through the gateway, or against services directly."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = [
    "PASSWORD",
    "Account",
    "Endpoints",
    "Shop",
    "bearer",
    "order_body",
    "shipping_address",
    "unique",
]

PASSWORD = "e2e-correct-horse-battery"


@dataclass(frozen=True)
class Endpoints:
    """Where each part of the API lives: all behind the gateway's ``/api``, or each service."""

    users: str
    catalog: str
    orders: str
    chat: str

    @classmethod
    def through_gateway(cls, gateway_url: str) -> Endpoints:
        api = f"{gateway_url}/api"
        return cls(users=api, catalog=api, orders=api, chat=api)


@dataclass(frozen=True)
class Account:
    """A registered user and the tokens of its login."""

    id: str
    email: str
    password: str
    access_token: str
    refresh_token: str


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def shipping_address() -> dict[str, str]:
    return {
        "name": "Grace Hopper",
        "line1": "1 Navy Yard Road",
        "city": "Arlington",
        "postal_code": "22202",
        "country": "US",
    }


def order_body(*items: tuple[str, int]) -> dict[str, Any]:
    """A ``POST /orders`` body for ``(product_id, quantity)`` pairs."""
    return {
        "items": [
            {"product_id": product_id, "quantity": quantity} for product_id, quantity in items
        ],
        "shipping_address": shipping_address(),
    }


def unique(prefix: str) -> str:
    """A short unique token for names, SKUs, emails and keys of one test."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class Shop:
    """The calls the tests make, each one HTTP request (or two: register, then log in)."""

    def __init__(self, endpoints: Endpoints, client: httpx.Client) -> None:
        self.endpoints = endpoints
        self.client = client

    def register(self, *, email: str | None = None, password: str = PASSWORD) -> httpx.Response:
        email = email or f"{unique('customer')}@example.com"
        body = {"email": email, "password": password, "full_name": "Grace Hopper"}
        return self.client.post(f"{self.endpoints.users}/users", json=body)

    def log_in(self, email: str, password: str, **headers: str) -> httpx.Response:
        form = {"username": email, "password": password}
        return self.client.post(f"{self.endpoints.users}/auth/token", data=form, headers=headers)

    def new_customer(self) -> Account:
        """Register a customer and log in."""
        registered = self.register()
        assert registered.status_code == 201, registered.text
        user = registered.json()
        return self.account(user["email"], PASSWORD, user_id=user["id"])

    def account(self, email: str, password: str, *, user_id: str = "") -> Account:
        """Log in as an existing user."""
        login = self.log_in(email, password)
        assert login.status_code == 200, login.text
        tokens = login.json()
        return Account(user_id, email, password, tokens["access_token"], tokens["refresh_token"])

    def add_product(
        self, admin: Account, *, stock: int, name: str | None = None, price: str = "24.50"
    ) -> dict[str, Any]:
        """An admin adds a product of its own (unique SKU and name) with ``stock`` items."""
        sku = unique("E2E").upper()
        body = {
            "sku": sku,
            "name": name or f"Test Lantern {sku}",
            "description": "A sturdy lantern made for the end-to-end tests.",
            "category": "e2e-tests",
            "price": price,
            "stock": stock,
        }
        response = self.client.post(
            f"{self.endpoints.catalog}/products", json=body, headers=bearer(admin.access_token)
        )
        assert response.status_code == 201, response.text
        product: dict[str, Any] = response.json()
        return product

    def product(self, product_id: str) -> dict[str, Any]:
        response = self.client.get(f"{self.endpoints.catalog}/products/{product_id}")
        assert response.status_code == 200, response.text
        product: dict[str, Any] = response.json()
        return product

    def place_order(
        self,
        account: Account,
        *items: tuple[str, int],
        key: str | None = None,
        request_id: str | None = None,
        **extra_headers: str,
    ) -> httpx.Response:
        headers = {
            **bearer(account.access_token),
            "Idempotency-Key": key or unique("key"),
            **extra_headers,
        }
        if request_id:
            headers["X-Request-ID"] = request_id
        return self.client.post(
            f"{self.endpoints.orders}/orders", json=order_body(*items), headers=headers
        )

    def order(self, account: Account, order_id: str) -> dict[str, Any]:
        response = self.client.get(
            f"{self.endpoints.orders}/orders/{order_id}", headers=bearer(account.access_token)
        )
        assert response.status_code == 200, response.text
        order: dict[str, Any] = response.json()
        return order
