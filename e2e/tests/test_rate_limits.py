"""The limits per user and per account, through the gateway: one user's burst or one account's
failed logins are refused, while other users behind the same client address go on."""

from __future__ import annotations

import pytest

from tests.support.shop import Account, Shop

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
    assert 1 <= int(with_the_password.headers["retry-after"]) <= 60
    assert with_the_password.headers["ratelimit-policy"] == '"logins";q=5;w=60'
    assert "access_token" not in with_the_password.text
    assert other.status_code == 200
