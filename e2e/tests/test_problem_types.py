"""Problem types as a client meets them through the gateway (docs/API.md, "Problem types"): the
reference lists exactly the types of the published document, and each error a client provokes
answers a type that the document lists for that operation and status, with RFC 6750 challenges on
the 401s and 403s."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from common_libs.testing.problem_checks import check_problem_type_answered

from tests.fleet import ROOT, Fleet
from tests.support.shop import Account, Shop, bearer, order_body

API_MD = ROOT / "docs" / "API.md"
# A row of a table of the reference's "Problem types": | `urn:fleet:...` | 409 | meaning |
_ROW = re.compile(r"^\| `(urn:fleet:[a-z-]+:[a-z0-9-]+)` \| (\d{3}) \|", re.MULTILINE)

# Orders are placed here: the session's first order must come first (see the fixture).
pytestmark = pytest.mark.usefixtures("first_order")


@pytest.fixture(scope="module")
def document(fleet: Fleet, client: httpx.Client) -> dict[str, Any]:
    response = client.get(f"{fleet.gateway}/api/openapi.json")
    assert response.status_code == 200
    served: dict[str, Any] = response.json()
    return served


def _reference_section() -> str:
    text = API_MD.read_text(encoding="utf-8")
    start = text.index("\n## Problem types\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def test_the_reference_lists_exactly_the_problem_types_of_the_published_document(
    document: dict[str, Any],
) -> None:
    published = {(entry["type"], entry["status"]) for entry in document["x-problem-types"]}
    listed = [(uri, int(status)) for uri, status in _ROW.findall(_reference_section())]

    assert len(listed) == len(set(listed)), "a type is listed twice"
    assert set(listed) == published
    # Every scope of the naming scheme has its types, and the gateway's answers are among them.
    scopes = {uri.split(":")[2] for uri, _ in listed}
    assert scopes == {"common", "users", "product-catalog", "orders", "chat"}


def _problem(response: httpx.Response, document: dict[str, Any], status: int, type_: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == type_
    check_problem_type_answered(response, document)


def test_each_error_a_client_provokes_answers_a_type_its_operation_documents(
    shop: Shop, admin: Account, client: httpx.Client, document: dict[str, Any]
) -> None:
    api = shop.endpoints.users  # every part of the API is behind the same /api
    customer = shop.new_customer()
    product = shop.add_product(admin, stock=1)
    missing = str(uuid.uuid4())

    cases: list[tuple[httpx.Response, int, str]] = [
        (client.get(f"{api}/nothing-here"), 404, "urn:fleet:common:not-found"),
        (
            client.get(f"{api}/products/{missing}"),
            404,
            "urn:fleet:product-catalog:product-not-found",
        ),
        (
            client.post(f"{api}/users", json={"email": "not an email", "password": "x"}),
            422,
            "urn:fleet:common:validation-failed",
        ),
        (
            client.get(f"{api}/products", params={"cursor": "not-a-cursor"}),
            422,
            "urn:fleet:common:invalid-cursor",
        ),
        (
            client.post(
                f"{api}/orders",
                json=order_body((product["id"], 1)),
                headers=bearer(customer.access_token),
            ),
            400,
            "urn:fleet:common:idempotency-key-missing",
        ),
        (
            shop.place_order(customer, (product["id"], 2)),
            409,
            "urn:fleet:orders:out-of-stock",
        ),
        (
            client.get(f"{api}/orders/{missing}", headers=bearer(customer.access_token)),
            404,
            "urn:fleet:orders:order-not-found",
        ),
        (
            client.get(
                f"{api}/chat/conversations/{missing}", headers=bearer(customer.access_token)
            ),
            404,
            "urn:fleet:chat:conversation-not-found",
        ),
        (
            client.post(
                f"{api}/users",
                json={
                    "email": customer.email,
                    "password": "another-long-password",
                    "full_name": "Ada Lovelace",
                },
            ),
            409,
            "urn:fleet:users:email-already-registered",
        ),
    ]
    for response, status, type_ in cases:
        _problem(response, document, status, type_)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/users/me"),
        ("GET", "/orders"),
        ("GET", "/chat/usage"),
        ("POST", "/products"),
    ],
)
def test_every_service_challenges_a_missing_and_a_refused_token_alike(
    shop: Shop, client: httpx.Client, document: dict[str, Any], method: str, path: str
) -> None:
    url = f"{shop.endpoints.users}{path}"

    anonymous = client.request(method, url)
    refused = client.request(method, url, headers=bearer("not.a.token"))

    _problem(anonymous, document, 401, "urn:fleet:common:authentication-required")
    assert anonymous.headers["www-authenticate"] == "Bearer"
    _problem(refused, document, 401, "urn:fleet:common:invalid-token")
    assert refused.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert 'error_description="' in refused.headers["www-authenticate"]


def test_a_role_that_may_not_answers_insufficient_scope(
    shop: Shop, client: httpx.Client, document: dict[str, Any]
) -> None:
    customer = shop.new_customer()
    api = shop.endpoints.users

    listing_users = client.get(f"{api}/users", headers=bearer(customer.access_token))
    adding_a_product = client.post(
        f"{api}/products", json={}, headers=bearer(customer.access_token)
    )

    for response in (listing_users, adding_a_product):
        _problem(response, document, 403, "urn:fleet:common:insufficient-scope")
        assert response.headers["www-authenticate"].startswith('Bearer error="insufficient_scope"')
