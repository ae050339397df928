"""Products: public reads, admin-only writes (API.md's catalog rows, success and failure)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from common_libs.testing import TestTokenIssuer

from tests.support.products import create_product, product_payload, reservation_body

PRODUCT_FIELDS = {
    "id",
    "sku",
    "name",
    "description",
    "category",
    "price",
    "currency",
    "stock_available",
    "created_at",
    "updated_at",
}


async def test_admin_creates_product_with_money_as_decimal_string(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    body = product_payload(price="1234.5", currency="EUR", stock=7)

    response = await client.post("/products", json=body, headers=admin_headers)

    assert response.status_code == 201
    product = response.json()
    assert set(product) == PRODUCT_FIELDS
    assert product["price"] == "1234.50"
    assert product["currency"] == "EUR"
    assert product["stock_available"] == 7
    assert product["created_at"].endswith("Z")
    uuid.UUID(product["id"])


async def test_currency_defaults_to_usd(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    product = await create_product(client, admin_headers)

    assert product["currency"] == "USD"


async def test_anyone_reads_a_product_by_id(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    created = await create_product(client, admin_headers)

    response = await client.get(f"/products/{created['id']}")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == created


async def test_unknown_product_id_answers_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/products/{uuid.uuid4()}")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404
    assert response.json()["type"] == "urn:fleet:product-catalog:product-not-found"
    assert response.json()["title"] == "Product Not Found"


async def test_malformed_product_id_answers_422(client: httpx.AsyncClient) -> None:
    response = await client.get("/products/not-a-uuid")

    assert response.status_code == 422
    assert response.json()["type"] == "urn:fleet:common:validation-failed"
    assert response.json()["errors"][0]["loc"] == ["path", "product_id"]


async def test_duplicate_sku_answers_409(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    first = await create_product(client, admin_headers)

    response = await client.post(
        "/products", json=product_payload(sku=first["sku"]), headers=admin_headers
    )

    assert response.status_code == 409
    assert response.json()["type"] == "urn:fleet:product-catalog:duplicate-sku"
    assert first["sku"] in response.json()["detail"]


@pytest.mark.parametrize(
    "change",
    [
        {"id": "00000000-0000-0000-0000-000000000001"},
        {"held": 0},
        {"price": 19.99},
        {"price": "-1.00"},
        {"price": "1.999"},
        {"stock": -1},
        {"stock": "5"},
        {"currency": "usd"},
        {"name": "   "},
        {"name": "nul\u0000byte"},
        {"sku": "has space"},
    ],
    ids=lambda change: "-".join(change),
)
async def test_create_refuses_invalid_or_unknown_fields_with_422(
    client: httpx.AsyncClient, admin_headers: dict[str, str], change: dict[str, Any]
) -> None:
    response = await client.post("/products", json=product_payload(**change), headers=admin_headers)

    assert response.status_code == 422
    assert response.json()["errors"]


async def test_create_without_token_answers_401_with_bearer_challenge(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/products", json=product_payload())

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["type"] == "urn:fleet:common:authentication-required"


async def test_expired_token_answers_401_saying_it_expired(
    client: httpx.AsyncClient, issuer: TestTokenIssuer
) -> None:
    headers = issuer.headers(role="admin", ttl_seconds=-60)

    response = await client.post("/products", json=product_payload(), headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'Bearer error="invalid_token", error_description="The access token expired"'
    )
    assert response.json()["type"] == "urn:fleet:common:token-expired"
    assert response.json()["title"] == "Token Expired"


async def test_token_of_another_issuer_answers_401(client: httpx.AsyncClient) -> None:
    stranger = TestTokenIssuer(kid="test-key")

    response = await client.post(
        "/products", json=product_payload(), headers=stranger.headers(role="admin")
    )

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith(
        'Bearer error="invalid_token", error_description="'
    )
    assert response.json()["type"] == "urn:fleet:common:invalid-token"


@pytest.mark.parametrize("role", ["customer", "service"])
async def test_create_by_non_admin_answers_403(
    client: httpx.AsyncClient, issuer: TestTokenIssuer, role: str
) -> None:
    response = await client.post(
        "/products", json=product_payload(), headers=issuer.headers(role=role)
    )

    assert response.status_code == 403
    assert response.json()["type"] == "urn:fleet:common:insufficient-scope"
    assert response.headers["www-authenticate"].startswith(
        'Bearer error="insufficient_scope", error_description="'
    )


async def test_patch_changes_only_the_given_fields(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    created = await create_product(client, admin_headers)

    response = await client.patch(
        f"/products/{created['id']}", json={"price": "5", "stock": 3}, headers=admin_headers
    )

    assert response.status_code == 200
    product = response.json()
    assert product["price"] == "5.00"
    assert product["stock_available"] == 3
    assert product["name"] == created["name"]
    assert product["updated_at"] > created["updated_at"]
    assert (await client.get(f"/products/{created['id']}")).json() == product


async def test_patch_with_empty_body_changes_nothing(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    created = await create_product(client, admin_headers)

    response = await client.patch(f"/products/{created['id']}", json={}, headers=admin_headers)

    assert response.status_code == 200
    assert response.json() == created


@pytest.mark.parametrize("body", [{"name": None}, {"stock": None}, {"role": "admin"}])
async def test_patch_refuses_nulls_and_unknown_fields_with_422(
    client: httpx.AsyncClient, admin_headers: dict[str, str], body: dict[str, Any]
) -> None:
    created = await create_product(client, admin_headers)

    response = await client.patch(f"/products/{created['id']}", json=body, headers=admin_headers)

    assert response.status_code == 422


async def test_patch_to_a_taken_sku_answers_409(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    first = await create_product(client, admin_headers)
    second = await create_product(client, admin_headers)

    response = await client.patch(
        f"/products/{second['id']}", json={"sku": first["sku"]}, headers=admin_headers
    )

    assert response.status_code == 409


async def test_patch_of_unknown_product_answers_404(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await client.patch(
        f"/products/{uuid.uuid4()}", json={"stock": 1}, headers=admin_headers
    )

    assert response.status_code == 404


async def test_patch_by_customer_answers_403(
    client: httpx.AsyncClient, admin_headers: dict[str, str], customer_headers: dict[str, str]
) -> None:
    created = await create_product(client, admin_headers)

    response = await client.patch(
        f"/products/{created['id']}", json={"stock": 0}, headers=customer_headers
    )

    assert response.status_code == 403
    assert response.json()["type"] == "urn:fleet:common:insufficient-scope"
    assert response.headers["www-authenticate"].startswith('Bearer error="insufficient_scope"')
    assert (await client.get(f"/products/{created['id']}")).json()["stock_available"] == 10


async def test_patch_without_token_answers_401(client: httpx.AsyncClient) -> None:
    response = await client.patch(f"/products/{uuid.uuid4()}", json={"stock": 0})

    assert response.status_code == 401


async def test_stock_cannot_be_set_below_what_is_held(
    client: httpx.AsyncClient, admin_headers: dict[str, str], service_headers: dict[str, str]
) -> None:
    product = await create_product(client, admin_headers, stock=10)
    held = await client.post(
        "/inventory/reservations",
        json=reservation_body((product["id"], 4)),
        headers=service_headers,
    )
    assert held.status_code == 201

    refused = await client.patch(
        f"/products/{product['id']}", json={"stock": 3}, headers=admin_headers
    )
    allowed = await client.patch(
        f"/products/{product['id']}", json={"stock": 4}, headers=admin_headers
    )

    assert refused.status_code == 409
    assert refused.json()["type"] == "urn:fleet:product-catalog:stock-below-held"
    assert refused.json()["held"] == 4
    assert allowed.status_code == 200
    assert allowed.json()["stock_available"] == 0


async def test_delete_removes_product_from_reads(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    product = await create_product(client, admin_headers)

    response = await client.delete(f"/products/{product['id']}", headers=admin_headers)

    assert response.status_code == 204
    assert response.content == b""
    assert (await client.get(f"/products/{product['id']}")).status_code == 404
    listed = await client.get("/products", params={"category": product["category"]})
    assert listed.json()["items"] == []


async def test_delete_twice_answers_404_the_second_time(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    product = await create_product(client, admin_headers)
    await client.delete(f"/products/{product['id']}", headers=admin_headers)

    response = await client.delete(f"/products/{product['id']}", headers=admin_headers)

    assert response.status_code == 404


async def test_sku_of_a_deleted_product_can_be_reused(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    old = await create_product(client, admin_headers)
    await client.delete(f"/products/{old['id']}", headers=admin_headers)

    response = await client.post(
        "/products", json=product_payload(sku=old["sku"]), headers=admin_headers
    )

    assert response.status_code == 201
    assert response.json()["id"] != old["id"]


async def test_delete_with_held_stock_answers_409(
    client: httpx.AsyncClient, admin_headers: dict[str, str], service_headers: dict[str, str]
) -> None:
    product = await create_product(client, admin_headers)
    await client.post(
        "/inventory/reservations",
        json=reservation_body((product["id"], 1)),
        headers=service_headers,
    )

    response = await client.delete(f"/products/{product['id']}", headers=admin_headers)

    assert response.status_code == 409
    assert response.json()["type"] == "urn:fleet:product-catalog:product-has-held-stock"
    assert response.json()["product_id"] == product["id"]
    assert (await client.get(f"/products/{product['id']}")).status_code == 200


async def test_delete_by_customer_answers_403(
    client: httpx.AsyncClient, admin_headers: dict[str, str], customer_headers: dict[str, str]
) -> None:
    product = await create_product(client, admin_headers)

    response = await client.delete(f"/products/{product['id']}", headers=customer_headers)

    assert response.status_code == 403
    assert response.json()["type"] == "urn:fleet:common:insufficient-scope"
    assert response.headers["www-authenticate"].startswith('Bearer error="insufficient_scope"')
    assert (await client.get(f"/products/{product['id']}")).status_code == 200


async def test_delete_without_token_answers_401(client: httpx.AsyncClient) -> None:
    response = await client.delete(f"/products/{uuid.uuid4()}")

    assert response.status_code == 401
