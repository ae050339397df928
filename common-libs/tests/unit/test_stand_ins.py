"""The stand-ins in process: a pact's provider, built from a pact the pact kit writes, and the
token endpoint whose tokens the fleet's verifier accepts."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.stand_in_pact import (
    CREDENTIALS,
    LISTED_ID,
    PAGES,
    PRODUCT_ID,
    RESERVATION_ID,
    RESERVATIONS,
    UNKNOWN_PRODUCT_ID,
    UNKNOWN_RESERVATION_ID,
    first_page,
    reservation,
    write_pact,
    wrong_secret,
)

from common_libs.auth import StaticKeySource, TokenVerifier
from common_libs.testing import Rule, TestTokenIssuer, ToolCall
from common_libs.testing.stand_ins import (
    INFO_PATH,
    PACT_VARIABLE,
    PactStandIn,
    _rule_holds,
    load_llm_rules,
    pact_stand_in,
    pact_stand_in_from_environment,
    token_stand_in,
    token_stand_in_from_environment,
)

ISSUER, AUDIENCE = "fleet-user-service", "fleet"


@pytest.fixture(scope="module")
def pact_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pact(tmp_path_factory.mktemp("pact"))


@pytest.fixture
async def provider(pact_file: Path) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the pact's stand-in, in process."""
    transport = httpx.ASGITransport(app=pact_stand_in(pact_file))
    async with httpx.AsyncClient(transport=transport, base_url="http://provider") as client:
        yield client


async def test_a_reservation_of_the_example_product_is_answered_for_the_requests_own_id(
    provider: httpx.AsyncClient,
) -> None:
    reservation_id = str(uuid.uuid4())
    body = {"reservation_id": reservation_id, "items": [{"product_id": PRODUCT_ID, "quantity": 2}]}

    answer = await provider.post("/reservations", json=body)

    assert answer.status_code == 201
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {
        "reservation_id": reservation_id,
        "items": [{"product_id": PRODUCT_ID, "quantity": 2, "price": "9.50"}],
        "status": "held",
    }


async def test_what_the_request_sent_in_the_examples_places_comes_back(
    provider: httpx.AsyncClient,
) -> None:
    product_id, reservation_id = str(uuid.uuid4()), str(uuid.uuid4())
    body = {"reservation_id": reservation_id, "items": [{"product_id": product_id, "quantity": 1}]}

    answer = await provider.post("/reservations", json=body)

    assert answer.status_code == 201
    assert answer.json()["reservation_id"] == reservation_id
    assert answer.json()["items"] == [{"product_id": product_id, "quantity": 1, "price": "9.50"}]


async def test_the_body_fields_the_pact_names_choose_the_interaction(
    provider: httpx.AsyncClient,
) -> None:
    body = reservation(UNKNOWN_PRODUCT_ID, reservation_id=str(uuid.uuid4()))

    answer = await provider.post("/reservations", json=body)

    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json() == {"detail": "Unknown product.", "product_id": UNKNOWN_PRODUCT_ID}


async def test_a_list_like_its_example_may_hold_any_number_of_items(
    provider: httpx.AsyncClient,
) -> None:
    items = [{"product_id": str(uuid.uuid4()), "quantity": n} for n in (1, 2, 3)]

    answer = await provider.post("/reservations/batch", json={"items": items})

    assert answer.status_code == 201
    assert answer.json() == {"status": "held"}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", "application/json"),
        (b"{not json", "application/json"),
        (json.dumps({"reservation_id": "x", "items": "none"}).encode(), "application/json"),
        (json.dumps({"reservation_id": str(uuid.uuid4())}).encode(), "application/json"),
    ],
    ids=["no body", "not JSON", "items not a list", "no items"],
)
async def test_a_body_that_fits_no_interaction_gets_the_first_success(
    provider: httpx.AsyncClient, body: bytes, content_type: str
) -> None:
    answer = await provider.post(
        "/reservations", content=body, headers={"Content-Type": content_type}
    )

    assert answer.status_code == 201
    assert answer.json()["status"] == "held"


async def test_an_id_in_the_path_is_any_uuid_and_comes_back(provider: httpx.AsyncClient) -> None:
    reservation_id = str(uuid.uuid4())

    answer = await provider.post(f"/reservations/{reservation_id}/commit")

    assert answer.status_code == 200
    assert answer.json() == {"reservation_id": reservation_id, "status": "committed"}


async def test_a_path_the_pact_names_exactly_wins_over_one_with_any_id(
    provider: httpx.AsyncClient,
) -> None:
    unknown = await provider.post(f"/reservations/{UNKNOWN_RESERVATION_ID}/release")
    held = await provider.post(f"/reservations/{uuid.uuid4()}/release")

    assert (unknown.status_code, unknown.content) == (404, b"")
    assert held.status_code == 200


@pytest.mark.parametrize(
    ("secret", "status"),
    [("the-secret", 200), ("not-the-secret", 401), ("another-secret", 200)],
)
async def test_form_fields_choose_the_answer_else_the_first_success_answers(
    provider: httpx.AsyncClient, secret: str, status: int
) -> None:
    form = {"grant_type": "client_credentials", "client_id": "shop", "client_secret": secret}

    answer = await provider.post("/auth/token", data=form)

    assert answer.status_code == status


async def test_an_example_page_answers_a_larger_page_and_keeps_a_cursor_the_pact_follows(
    provider: httpx.AsyncClient,
) -> None:
    first = await provider.get("/products", params={"limit": 100, "category": "boots", "x": "1"})
    last = await provider.get(
        "/products", params={"limit": 100, "category": "shoes", "cursor": "next"}
    )

    assert first.status_code == 200
    assert first.json() == {
        "items": [{"id": LISTED_ID, "name": "Red shoes"}],
        "next_cursor": "next",
    }
    assert last.json() == {"items": [], "next_cursor": None}


async def test_a_next_cursor_no_interaction_follows_ends_the_list(tmp_path: Path) -> None:
    app = pact_stand_in(write_pact(tmp_path, [first_page]))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://provider") as client:
        page = await client.get("/products", params={"limit": 20, "category": "shoes"})

    assert page.json()["next_cursor"] is None


@pytest.mark.parametrize(
    "query",
    [
        {"category": "shoes"},
        {"limit": "0", "category": "shoes"},
        {"limit": "many", "category": "shoes"},
        {"limit": "1", "category": "Shoes!"},
    ],
    ids=["no limit", "smaller page", "limit not a number", "category against its rule"],
)
async def test_a_request_without_the_pacts_query_left_the_contract(
    provider: httpx.AsyncClient, query: dict[str, str]
) -> None:
    answer = await provider.get("/products", params=query)

    assert answer.status_code == 404


async def test_a_text_answer_is_served_as_written(provider: httpx.AsyncClient) -> None:
    answer = await provider.get("/health")

    assert (answer.status_code, answer.text) == (200, "ok")
    assert answer.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/reservations"), ("POST", "/orders"), ("POST", "/reservations/not-an-id/commit")],
)
async def test_a_request_that_left_the_contract_gets_a_problem_listing_the_pact(
    provider: httpx.AsyncClient, method: str, path: str
) -> None:
    answer = await provider.request(method, path, params={"page": "2"})

    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"] == "urn:fleet:common:not-found"
    assert (
        f"{method} {path}?page=2 is not in shop-consumer's pact with shop-provider"
        in (problem["detail"])
    )
    assert (
        "POST /reservations -> 201 (a reservation of a product in stock)"
        in (problem["interactions"])
    )


async def test_a_path_the_pact_only_answers_with_errors_left_the_contract(tmp_path: Path) -> None:
    transport = httpx.ASGITransport(app=pact_stand_in(write_pact(tmp_path, [wrong_secret])))
    async with httpx.AsyncClient(transport=transport, base_url="http://provider") as client:
        answer = await client.post("/auth/token", data={"client_id": "someone-else"})

    assert answer.status_code == 404
    assert answer.json()["interactions"] == [
        "POST /auth/token -> 401 (a client-credentials grant answered 401)"
    ]


async def test_the_stand_in_tells_what_it_knows(provider: httpx.AsyncClient) -> None:
    answer = await provider.get(INFO_PATH)

    info = answer.json()
    assert (info["consumer"], info["provider"]) == ("shop-consumer", "shop-provider")
    assert info["pact"] == "shop-consumer-shop-provider.json"
    assert len(info["interactions"]) == len(RESERVATIONS + CREDENTIALS + PAGES) + 1
    assert set(info["example_ids"]) == {
        PRODUCT_ID,
        UNKNOWN_PRODUCT_ID,
        RESERVATION_ID,
        UNKNOWN_RESERVATION_ID,
    }
    assert info["example_ids"][PRODUCT_ID] == (
        "POST /reservations $.items[0].product_id (a reservation of a product in stock)"
    )


async def test_starting_the_stand_in_prints_what_it_serves(
    pact_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await pact_stand_in(pact_file)({"type": "lifespan"}, receive, send)

    assert [message["type"] for message in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    printed = capsys.readouterr().err.splitlines()
    assert printed[0] == (
        "stand-in for shop-provider from shop-consumer's pact shop-consumer-shop-provider.json:"
    )
    assert "  POST /reservations -> 201 (a reservation of a product in stock)" in printed
    assert len([line for line in printed if " -> " in line]) == 11
    assert f"  example id {UNKNOWN_RESERVATION_ID}: POST /reservations/" in "\n".join(printed)


def test_the_factory_serves_the_pact_the_environment_names(
    pact_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PACT_VARIABLE, str(pact_file))

    app = pact_stand_in_from_environment()

    assert isinstance(app, PactStandIn)
    assert app.provider == "shop-provider"


@pytest.mark.parametrize(
    ("rule", "value", "example", "holds"),
    [
        ({"matchers": [{"match": "regex", "regex": "^a+$"}]}, "aaa", "a", True),
        ({"matchers": [{"match": "regex", "regex": "^a+$"}]}, 1, "a", False),
        ({"matchers": [{"match": "type"}]}, 5, 1.5, True),
        ({"matchers": [{"match": "type"}]}, True, 1, False),
        ({"matchers": [{"match": "integer"}]}, "12", 1, True),
        ({"matchers": [{"match": "integer"}]}, 1.5, 1, False),
        ({"matchers": [{"match": "decimal"}]}, 2, 1.5, True),
        ({"matchers": [{"match": "number"}]}, None, 1.5, False),
        ({"matchers": [{"match": "equality"}]}, "x", "x", True),
        ({"matchers": [{"match": "include", "value": "x"}]}, "xy", "x", False),
        (
            {"combine": "OR", "matchers": [{"match": "integer"}, {"match": "regex", "regex": "b"}]},
            "b",
            1,
            True,
        ),
        ({"combine": "AND", "matchers": []}, "x", "x", False),
        (None, "x", "x", False),
    ],
)
def test_matching_rules_hold_for_the_kinds_the_fleets_pacts_use(
    rule: dict[str, Any] | None, value: Any, example: Any, holds: bool
) -> None:
    assert _rule_holds(rule, value, example) is holds


@pytest.fixture
async def tokens() -> AsyncIterator[tuple[httpx.AsyncClient, TestTokenIssuer]]:
    issuer = TestTokenIssuer()
    transport = httpx.ASGITransport(app=token_stand_in(issuer))
    async with httpx.AsyncClient(transport=transport, base_url="http://tokens") as client:
        yield client, issuer


async def _verify(client: httpx.AsyncClient, token: str) -> Any:
    jwks = (await client.get("/auth/jwks")).json()
    verifier = TokenVerifier(StaticKeySource(jwks), issuer=ISSUER, audience=AUDIENCE)
    return await verifier.verify(token)


@pytest.mark.parametrize("role", ["customer", "admin"])
async def test_a_minted_token_passes_the_fleets_verifier_with_the_keys_served(
    tokens: tuple[httpx.AsyncClient, TestTokenIssuer], role: str
) -> None:
    client, _ = tokens
    subject = str(uuid.uuid4())

    answer = await client.get("/token", params={"role": role, "sub": subject})

    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert (body["token_type"], body["expires_in"]) == ("bearer", 900)
    principal = await _verify(client, body["access_token"])
    assert (principal.subject, principal.role) == (subject, role)


async def test_a_token_without_a_subject_gets_a_new_one_each_time(
    tokens: tuple[httpx.AsyncClient, TestTokenIssuer],
) -> None:
    client, _ = tokens

    first = (await client.get("/token", params={"role": "customer"})).json()["access_token"]
    second = (await client.get("/token", params={"role": "customer"})).json()["access_token"]

    subjects = {(await _verify(client, token)).subject for token in (first, second)}
    assert len(subjects) == 2
    assert all(uuid.UUID(subject) for subject in subjects)


async def test_a_service_token_names_its_client(
    tokens: tuple[httpx.AsyncClient, TestTokenIssuer],
) -> None:
    client, _ = tokens

    answer = await client.get("/token", params={"role": "service", "sub": "order-service"})

    principal = await _verify(client, answer.json()["access_token"])
    assert (principal.subject, principal.is_service) == ("order-service", True)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"role": "root"}, "role"),
        ({}, "role"),
        ({"role": "customer", "sub": "not-a-uuid"}, "sub"),
        ({"role": "service", "sub": "a client/with a slash"}, "sub"),
    ],
)
async def test_a_bad_role_or_subject_is_a_422_problem(
    tokens: tuple[httpx.AsyncClient, TestTokenIssuer], query: dict[str, str], field: str
) -> None:
    client, _ = tokens

    answer = await client.get("/token", params=query)

    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert [error["loc"] for error in answer.json()["errors"]] == [["query", field]]


@pytest.mark.parametrize(("method", "path"), [("GET", "/auth/token"), ("POST", "/token")])
async def test_the_token_stand_in_answers_anything_else_with_a_404_problem(
    tokens: tuple[httpx.AsyncClient, TestTokenIssuer], method: str, path: str
) -> None:
    client, _ = tokens

    answer = await client.request(method, path)

    assert answer.status_code == 404
    assert answer.json()["type"] == "urn:fleet:common:not-found"


async def test_the_token_factory_makes_a_key_of_its_own() -> None:
    apps = [token_stand_in_from_environment() for _ in range(2)]
    kids = []
    for app in apps:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tokens") as client:
            kids.append((await client.get("/auth/jwks")).json()["keys"][0]["kid"])

    assert len(set(kids)) == 2


def test_llm_rules_are_read_from_a_json_list(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.json"
    rules_file.write_text(
        json.dumps(
            [
                {"name": "search", "pattern": "shoes", "calls": [{"name": "f", "arguments": "{}"}]},
                {"name": "answer", "when": "tool", "reply": "Found: {tool_results}"},
            ]
        )
    )

    assert load_llm_rules(rules_file) == [
        Rule(name="search", pattern="shoes", calls=[ToolCall("f", "{}")]),
        Rule(name="answer", when="tool", reply="Found: {tool_results}"),
    ]


@pytest.mark.parametrize(
    "content",
    ['{"name": "not a list"}', '[{"name": "neither", "when": "user"}]'],
    ids=["not a list", "a rule without reply or calls"],
)
def test_llm_rules_that_are_not_rules_are_refused(tmp_path: Path, content: str) -> None:
    rules_file = tmp_path / "rules.json"
    rules_file.write_text(content)

    with pytest.raises(ValueError, match=r"list of rules|set exactly one"):
        load_llm_rules(rules_file)
