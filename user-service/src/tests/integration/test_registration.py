"""POST /users: customers register; emails are unique case-insensitively; no hash ever leaks."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.tables import User
from tests.integration.conftest import PASSWORD, unique_email
from tests.support.users import register


async def test_registration_answers_201_with_the_new_customer(client: httpx.AsyncClient) -> None:
    email = unique_email()

    response = await client.post(
        "/users", json={"email": email, "password": PASSWORD, "full_name": "  Ada Lovelace "}
    )

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "email", "full_name", "role", "created_at"}
    assert body["email"] == email
    assert body["full_name"] == "Ada Lovelace"
    assert body["role"] == "customer"
    assert body["created_at"].endswith("Z")
    assert response.headers["location"] == f"/users/{body['id']}"
    uuid.UUID(body["id"])


async def test_stored_password_hash_is_argon2id(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    user = await register(client)

    stored = await connection.scalar(
        select(User.password_hash).where(User.id == uuid.UUID(user["id"]))
    )

    assert stored is not None
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


async def test_same_email_in_other_letter_case_answers_409(client: httpx.AsyncClient) -> None:
    email = unique_email("Mixed.Case")
    await register(client, email=email)

    response = await client.post(
        "/users",
        json={"email": email.upper(), "password": PASSWORD, "full_name": "Someone Else"},
    )

    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 409
    assert response.json()["type"] == "urn:fleet:users:email-already-registered"


@pytest.mark.parametrize(
    "smuggled", [{"role": "admin"}, {"id": str(uuid.uuid4())}, {"is_admin": True}]
)
async def test_privileged_fields_in_registration_answer_422(
    client: httpx.AsyncClient, smuggled: dict[str, object]
) -> None:
    body = {"email": unique_email(), "password": PASSWORD, "full_name": "Mallory", **smuggled}

    response = await client.post("/users", json=body)

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", next(iter(smuggled))]


@pytest.mark.parametrize("password", ["x" * 7, "x" * 129])
async def test_password_outside_8_to_128_characters_answers_422(
    client: httpx.AsyncClient, password: str
) -> None:
    response = await client.post(
        "/users", json={"email": unique_email(), "password": password, "full_name": "Short"}
    )

    assert response.status_code == 422
    assert password not in response.text


@pytest.mark.parametrize(
    "email", ["not-an-email", "a@localhost", "a@b.invalid", "nul\x00@example.com"]
)
async def test_invalid_email_answers_422(client: httpx.AsyncClient, email: str) -> None:
    response = await client.post(
        "/users", json={"email": email, "password": PASSWORD, "full_name": "Nobody"}
    )

    assert response.status_code == 422


@pytest.mark.parametrize("full_name", ["   ", "Bad\x00Name", ""])
async def test_blank_or_control_character_full_name_answers_422(
    client: httpx.AsyncClient, full_name: str
) -> None:
    response = await client.post(
        "/users", json={"email": unique_email(), "password": PASSWORD, "full_name": full_name}
    )

    assert response.status_code == 422


async def test_malformed_json_answers_422_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/users", content=b"{not json", headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_concurrent_registrations_of_one_email_create_one_account(
    committing_client: httpx.AsyncClient,
) -> None:
    email = unique_email("race")
    bodies = [
        {"email": variant, "password": PASSWORD, "full_name": "Racer"}
        for variant in (email, email.upper(), email.title(), email.capitalize())
    ]

    responses = await asyncio.gather(*(committing_client.post("/users", json=b) for b in bodies))

    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]


async def test_email_longer_than_254_characters_answers_422(client: httpx.AsyncClient) -> None:
    email = "a" * 60 + "@" + ("b" * 60 + ".") * 3 + "c" * 10 + ".com"

    response = await client.post(
        "/users", json={"email": email, "password": PASSWORD, "full_name": "Long"}
    )

    assert len(email) > 254
    assert response.status_code == 422
