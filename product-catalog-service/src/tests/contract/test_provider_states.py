"""The provider-state endpoint the pact verifier calls: states made with the service's own rules."""

from __future__ import annotations

import httpx
from common_libs.testing.pact import RunningProvider


def test_product_in_stock_state_makes_a_product_with_that_stock(provider: RunningProvider) -> None:
    response = httpx.post(
        provider.provider_states_url,
        json={"state": "a product is in stock", "params": {"stock": 7, "name": "Oak shelf"}},
    )

    assert response.status_code == 200
    product = httpx.get(f"{provider.url}/products/{response.json()['product_id']}").json()
    assert (product["name"], product["stock_available"]) == ("Oak shelf", 7)


def test_state_of_an_existing_reservation_id_is_refused(provider: RunningProvider) -> None:
    held = httpx.post(
        provider.provider_states_url, json={"state": "a reservation is held", "params": {}}
    ).json()

    response = httpx.post(
        provider.provider_states_url,
        json={
            "state": "no reservation has the id",
            "params": {"reservation_id": held["reservation_id"]},
        },
    )

    assert response.status_code == 409


def test_unknown_state_is_refused_naming_the_known_ones(provider: RunningProvider) -> None:
    response = httpx.post(
        provider.provider_states_url, json={"state": "the moon is full", "params": {}}
    )

    assert response.status_code == 422
    assert "a product is in stock" in response.json()["known_states"]


def test_no_product_state_deletes_a_product_with_that_id(provider: RunningProvider) -> None:
    made = httpx.post(
        provider.provider_states_url, json={"state": "a product is in stock", "params": {}}
    ).json()

    response = httpx.post(
        provider.provider_states_url,
        json={"state": "no product has the id", "params": {"product_id": made["product_id"]}},
    )

    assert response.status_code == 200
    assert httpx.get(f"{provider.url}/products/{made['product_id']}").status_code == 404
