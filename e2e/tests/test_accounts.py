"""Accounts through the gateway: register, log in, refresh."""

from __future__ import annotations

from tests.support.shop import PASSWORD, Shop, bearer


def test_customer_registers_and_logs_in_through_the_gateway(shop: Shop) -> None:
    registered = shop.register()
    assert registered.status_code == 201, registered.text
    user = registered.json()
    assert user["role"] == "customer"

    login = shop.log_in(user["email"], PASSWORD)

    assert login.status_code == 200, login.text
    tokens = login.json()
    assert tokens["token_type"] == "bearer"
    me = shop.client.get(f"{shop.endpoints.users}/users/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200
    assert me.json()["id"] == user["id"]


def test_wrong_password_is_refused_with_401(shop: Shop) -> None:
    email = shop.register().json()["email"]

    login = shop.log_in(email, "not-the-password")

    assert login.status_code == 401
    assert login.headers["content-type"].startswith("application/problem+json")


def test_refresh_gives_a_new_pair_and_the_used_refresh_token_is_refused(shop: Shop) -> None:
    customer = shop.new_customer()
    refresh_url = f"{shop.endpoints.users}/auth/refresh"

    refreshed = shop.client.post(refresh_url, json={"refresh_token": customer.refresh_token})

    assert refreshed.status_code == 200, refreshed.text
    pair = refreshed.json()
    assert pair["refresh_token"] != customer.refresh_token
    me = shop.client.get(f"{shop.endpoints.users}/users/me", headers=bearer(pair["access_token"]))
    assert me.json()["email"] == customer.email
    replayed = shop.client.post(refresh_url, json={"refresh_token": customer.refresh_token})
    assert replayed.status_code == 401
