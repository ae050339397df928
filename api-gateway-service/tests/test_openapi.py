"""The public OpenAPI document: what the committed file says, and how the gateway serves it."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

import build_openapi
from support.assertions import (
    OPERATION_PROBLEM_TYPES,
    assert_get_and_head_only,
    assert_security_headers,
)
from support.raw_http import raw_request
from support.servers import SERVICE_DIR, Gateway

DOCUMENT_FILE = SERVICE_DIR / "openapi" / "openapi.json"

# Every public operation of API.md, as clients call it (path parameters written as {}).
PUBLIC_OPERATIONS = {
    ("post", "/api/users"),
    ("post", "/api/auth/token"),
    ("post", "/api/auth/refresh"),
    ("post", "/api/auth/logout"),
    ("get", "/api/auth/jwks"),
    ("get", "/api/users/me"),
    ("patch", "/api/users/me"),
    ("delete", "/api/users/me"),
    ("get", "/api/users/{}"),
    ("get", "/api/users"),
    ("get", "/api/products"),
    ("get", "/api/products/{}"),
    ("post", "/api/products"),
    ("patch", "/api/products/{}"),
    ("delete", "/api/products/{}"),
    ("get", "/api/categories"),
    ("post", "/api/orders"),
    ("get", "/api/orders"),
    ("get", "/api/orders/{}"),
    ("post", "/api/orders/{}/cancel"),
    ("patch", "/api/orders/{}/status"),
    ("post", "/api/chat/generate_response"),
    ("post", "/api/chat/get_embeddings"),
    ("post", "/api/chat/count_tokens"),
    ("get", "/api/chat/conversations"),
    ("get", "/api/chat/conversations/{}"),
    ("delete", "/api/chat/conversations/{}"),
    ("get", "/api/chat/usage"),
}
# Anyone may call these (API.md, "who"); every other operation needs a token.
OPEN_OPERATIONS = {
    ("post", "/api/users"),
    ("post", "/api/auth/token"),
    ("post", "/api/auth/refresh"),
    ("get", "/api/auth/jwks"),
    ("get", "/api/products"),
    ("get", "/api/products/{}"),
    ("get", "/api/categories"),
}
# The main requests and answers, each with an example: (method, path, "request" or status, media).
EXAMPLES = [
    ("post", "/api/users", "request", "application/json"),
    ("post", "/api/users", "201", "application/json"),
    ("post", "/api/auth/token", "request", "application/x-www-form-urlencoded"),
    ("post", "/api/auth/token", "200", "application/json"),
    ("get", "/api/products", "200", "application/json"),
    ("get", "/api/products/{}", "200", "application/json"),
    ("post", "/api/orders", "request", "application/json"),
    ("post", "/api/orders", "201", "application/json"),
    ("get", "/api/orders/{}", "200", "application/json"),
    ("post", "/api/chat/generate_response", "request", "application/json"),
    ("post", "/api/chat/generate_response", "200", "application/json"),
    ("post", "/api/chat/generate_response", "200", "text/event-stream"),
]
INTERNAL_WORDS = ("inventory", "reservation", "health", "ready", "metrics", "docs", "openapi")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DOCUMENT_FILE.read_text(encoding="utf-8"))
    return loaded


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in build_openapi.HTTP_METHODS:
                yield method, re.sub(r"\{[^}]+\}", "{}", path), operation


def _operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    return next(op for m, p, op in _operations(document) if (m, p) == (method, path))


def test_the_committed_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"].startswith("3.1.")
    assert document["servers"] == [
        {"url": "/", "description": document["servers"][0]["description"]}
    ]


def test_the_committed_document_is_as_the_script_writes_it() -> None:
    text = DOCUMENT_FILE.read_text(encoding="utf-8")

    assert text == build_openapi.render(json.loads(text))


def test_it_lists_every_public_operation_and_nothing_else(document: dict[str, Any]) -> None:
    assert {(method, path) for method, path, _ in _operations(document)} == PUBLIC_OPERATIONS


def test_nothing_internal_is_published(document: dict[str, Any]) -> None:
    routed = {prefix for row in build_openapi.load_routes() for prefix in row.prefixes}

    for path in document["paths"]:
        assert path.split("/")[1] == "api", path
        assert path.split("/")[2] in routed, path
        assert not any(word in path.lower() for word in INTERNAL_WORDS), path
    for kind, entries in document["components"].items():
        assert not [name for name in entries if "reservation" in name.lower()], kind


def test_every_operation_has_the_gateways_answers_as_problem_json(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        statuses = set(operation["responses"])
        assert {"429", "502", "503", "504"} <= statuses, (method, path)
        assert ("413" in statuses) == ("requestBody" in operation), (method, path)
        for status, problem_type in OPERATION_PROBLEM_TYPES.items():
            answer = operation["responses"].get(status)
            if answer is None:
                continue
            assert "$ref" not in answer, (method, path, status)
            assert "application/problem+json" in answer["content"], (method, path, status)
            types = answer["x-problem-types"]
            assert problem_type in types, (method, path, status)
            assert types == sorted(set(types)), (method, path, status)
            if status == "503":
                assert "Retry-After" in answer["headers"], (method, path, status)
            if status == "429":
                assert {"Retry-After", "RateLimit-Policy", "RateLimit"} <= set(answer["headers"])


def test_the_catalogue_holds_the_gateways_types_and_the_services(document: dict[str, Any]) -> None:
    catalogue = document["x-problem-types"]
    by_type = {entry["type"]: entry for entry in catalogue}

    assert [entry["type"] for entry in catalogue] == sorted(by_type)
    gateways = {entry["type"] for entry in build_openapi.GATEWAY_PROBLEM_TYPES}
    for entry in build_openapi.GATEWAY_PROBLEM_TYPES:
        assert by_type[entry["type"]]["status"] == entry["status"]
    listed = {
        problem_type
        for _, _, operation in _operations(document)
        for answer in operation["responses"].values()
        for problem_type in answer.get("x-problem-types", [])
    }
    # A service's type is there, as the service describes it, exactly when a public answer
    # lists it (the types of internal routes stay out); nothing else is.
    services = set()
    for row in build_openapi.load_routes():
        service = row.service
        own = json.loads((SERVICE_DIR.parent / service / "src" / "openapi.json").read_text())
        for entry in own.get("x-problem-types", []):
            services.add(entry["type"])
            if entry["type"] in listed:
                assert by_type[entry["type"]] == entry, (service, entry["type"])
            elif entry["type"] not in gateways:
                assert entry["type"] not in by_type, (service, entry["type"])
    assert set(by_type) <= services | gateways
    assert set(by_type) - gateways <= listed
    # Every type an answer names is in the catalogue, with that answer's status.
    for method, path, operation in _operations(document):
        for status, answer in operation["responses"].items():
            for problem_type in answer.get("x-problem-types", []):
                assert by_type[problem_type]["status"] == int(status), (method, path, status)
    headers = document["components"]["headers"]
    assert {"Retry-After", "RateLimit-Policy", "RateLimit"} <= set(headers)


def test_operations_that_need_a_token_offer_bearer_and_the_password_flow(
    document: dict[str, Any],
) -> None:
    schemes = document["components"]["securitySchemes"]

    for method, path, operation in _operations(document):
        if (method, path) in OPEN_OPERATIONS:
            assert "security" not in operation, (method, path)
        else:
            assert operation["security"] == [{"HTTPBearer": []}, {"OAuth2Password": []}]
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    assert schemes["HTTPBearer"]["bearerFormat"] == "JWT"
    assert schemes["OAuth2Password"]["flows"]["password"]["tokenUrl"] == "/api/auth/token"


def test_each_service_has_its_tag(document: dict[str, Any]) -> None:
    tags = [tag["name"] for tag in document["tags"]]

    assert tags == [row.tag for row in build_openapi.load_routes()]
    assert {tuple(op["tags"]) for _, _, op in _operations(document)} == {(tag,) for tag in tags}


@pytest.mark.parametrize(("method", "path", "part", "media"), EXAMPLES)
def test_the_main_requests_and_answers_have_valid_examples(
    document: dict[str, Any], method: str, path: str, part: str, media: str
) -> None:
    operation = _operation(document, method, path)
    content = (
        operation["requestBody"]["content"]
        if part == "request"
        else operation["responses"][part]["content"]
    )
    examples = content[media]["examples"]
    assert examples

    if media == "text/event-stream":
        # One example per kind of event, each as the schema describes one event.
        assert [example["value"].get("event") for example in examples.values()] == [None, "done"]
        assert json.loads(examples["delta"]["value"]["data"]) == {"delta": "Two mugs "}
    validator = OAS31Validator({**content[media]["schema"], "components": document["components"]})
    for example in examples.values():
        validator.validate(example["value"])


def test_the_description_states_the_rules_every_client_needs(document: dict[str, Any]) -> None:
    description = document["info"]["description"]

    for needle in (
        "application/problem+json",
        "next_cursor",
        "?cursor=",
        "Idempotency-Key",
        "24 hours",
        "`409`",
        "`422`",
        "decimal **strings**",
        "currency",
        "`429`",
        "RateLimit-Policy",
        '"per-address-orders"',
        "urn:fleet:common:rate-limited",
        "x-problem-types",
        "GATEWAY_CORS_ORIGINS",
        "Retry-After",
        "`413`",
        'data: {"delta": "..."}',
        "event: done",
        "X-Request-ID",
        "Authorization: Bearer",
    ):
        assert needle in description, needle


def test_the_order_idempotency_key_is_required(document: dict[str, Any]) -> None:
    parameters = _operation(document, "post", "/api/orders")["parameters"]

    key = next(p for p in parameters if p["name"] == "Idempotency-Key")
    assert key["in"] == "header"
    assert key["required"] is True
    assert key["schema"]["type"] == "string"


# ---- Served by the gateway -----------------------------------------------------------------------


def test_the_gateway_serves_the_committed_document(client: httpx.Client) -> None:
    response = client.get("/api/openapi.json")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == DOCUMENT_FILE.read_bytes()
    assert response.headers["cache-control"] == "no-cache"
    # Weak when gzipped (httpx asks for it): the bytes on the wire differ from the file's.
    assert re.fullmatch(r'(W/)?"[0-9a-f]+-[0-9a-f]+"', response.headers["etag"])
    assert "last-modified" in response.headers
    assert_security_headers(response.headers.multi_items())


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_a_client_with_the_current_etag_gets_304(client: httpx.Client, encoding: str) -> None:
    etag = client.get("/api/openapi.json", headers={"Accept-Encoding": encoding}).headers["etag"]

    response = client.get(
        "/api/openapi.json", headers={"If-None-Match": etag, "Accept-Encoding": encoding}
    )

    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"].removeprefix("W/") == etag.removeprefix("W/")
    assert_security_headers(response.headers.multi_items())


def test_the_document_is_gzipped_for_clients_that_accept_it(gateway: Gateway) -> None:
    response = raw_request(
        gateway.port, "GET", "/api/openapi.json", headers={"Accept-Encoding": "gzip"}
    )

    assert response.status == 200
    assert response.header("content-encoding") == "gzip"
    assert response.header("vary") == "Accept-Encoding"
    assert gzip.decompress(response.body) == DOCUMENT_FILE.read_bytes()


def test_head_answers_without_a_body(gateway: Gateway) -> None:
    response = raw_request(gateway.port, "HEAD", "/api/openapi.json")

    assert response.status == 200
    assert response.body == b""
    assert response.header("content-length") == str(DOCUMENT_FILE.stat().st_size)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_other_methods_answer_405_problem_with_allow(gateway: Gateway, method: str) -> None:
    response = raw_request(gateway.port, method, "/api/openapi.json", body=b"{}")

    assert_get_and_head_only(response)
