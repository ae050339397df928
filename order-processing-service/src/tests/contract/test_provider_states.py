"""The provider-state endpoint the pact verifier calls: orders made with the service's own
statements, seen through the API as their owner (and nobody else) sees them."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from common_libs.testing import TestTokenIssuer
from common_libs.testing.pact import RunningProvider


def _set_up(provider: RunningProvider, state: str, **params: Any) -> httpx.Response:
    return httpx.post(provider.provider_states_url, json={"state": state, "params": params})


def _read(provider: RunningProvider, order_id: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(f"{provider.url}/orders/{order_id}", headers=headers)


def test_customer_state_makes_a_confirmed_order_of_that_customer(
    provider: RunningProvider, token_issuer: TestTokenIssuer
) -> None:
    user_id = str(uuid.uuid4())

    made = _set_up(
        provider,
        "a customer has an order",
        user_id=user_id,
        name="Oak shelf",
        unit_price="30.50",
        quantity=3,
    )

    assert made.status_code == 200
    order = _read(provider, made.json()["order_id"], token_issuer.headers(subject=user_id)).json()
    assert (order["user_id"], order["status"], order["total"], order["currency"]) == (
        user_id,
        "confirmed",
        "91.50",
        "USD",
    )
    [item] = order["items"]
    assert (item["name"], item["unit_price"], item["quantity"], item["line_total"]) == (
        "Oak shelf",
        "30.50",
        3,
        "91.50",
    )


def test_another_customers_order_is_not_found_for_the_pacts_customer(
    provider: RunningProvider, token_issuer: TestTokenIssuer, pact_customer: str
) -> None:
    made = _set_up(provider, "another customer has an order")

    order_id = made.json()["order_id"]
    assert _read(provider, order_id, provider.headers).status_code == 404
    as_admin = _read(provider, order_id, token_issuer.headers(role="admin")).json()
    assert as_admin["status"] == "confirmed"
    assert as_admin["user_id"] != pact_customer


def test_customer_state_without_its_customer_is_refused(provider: RunningProvider) -> None:
    response = _set_up(provider, "a customer has an order")

    assert response.status_code == 409
    assert "user_id" in response.json()["detail"]


def test_unknown_state_is_refused_naming_the_known_ones(provider: RunningProvider) -> None:
    response = _set_up(provider, "the moon is full")

    assert response.status_code == 422
    assert "a customer has an order" in response.json()["known_states"]


def test_teardown_makes_nothing(provider: RunningProvider) -> None:
    response = httpx.post(
        provider.provider_states_url,
        json={"state": "another customer has an order", "action": "teardown"},
    )

    assert (response.status_code, response.json()) == (200, {})
