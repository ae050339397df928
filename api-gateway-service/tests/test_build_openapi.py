"""scripts/build_openapi.py on small, made-up service documents."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

import build_openapi
from build_openapi import BuildError, ServiceRoutes, build_document
from support.assertions import OPERATION_PROBLEM_TYPES

ROUTES = [
    ServiceRoutes(
        service="svc-a", upstream="a_up", prefixes=("things", "auth"), tag="A", description="As."
    ),
    ServiceRoutes(
        service="svc-b", upstream="b_up", prefixes=("orders",), tag="B", description="Bs."
    ),
]
BEARER = {"HTTPBearer": {"type": "http", "scheme": "bearer"}}
PROBLEM = {
    "type": "object",
    "properties": {"type": {"type": "string"}, "status": {"type": "integer"}},
    "required": ["type", "status"],
}
GATEWAY_STATUSES = {"429", "502", "503", "504"}


def _in_path(name: str) -> list[dict[str, Any]]:
    return [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}]


def _problem_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


def _operation(
    *,
    body: str | None = None,
    answer: str | None = None,
    secured: bool = False,
    operation_id: str | None = None,
    responses: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An operation whose request body and 200 answer are the named schemas (when given)."""
    operation: dict[str, Any] = {"tags": ["own-tag"], "responses": {"200": {"description": "OK"}}}
    if answer is not None:
        operation["responses"]["200"]["content"] = {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{answer}"}}
        }
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
        }
    if secured:
        operation["security"] = [{"HTTPBearer": []}]
    if operation_id is not None:
        operation["operationId"] = operation_id
    operation["responses"].update(responses or {})
    return operation


def _document(paths: dict[str, Any], schemas: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "svc", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": {"Problem": PROBLEM, **(schemas or {})},
            "securitySchemes": copy.deepcopy(BEARER),
        },
    }


def _thing_schemas() -> dict[str, Any]:
    return {
        "Thing": {"type": "object", "properties": {"part": {"$ref": "#/components/schemas/Part"}}},
        "Part": {"type": "object", "properties": {"name": {"type": "string"}}},
        "Reservation": {"type": "object", "properties": {"held": {"type": "boolean"}}},
    }


def _service_a() -> dict[str, Any]:
    return _document(
        {
            "/things": {"get": _operation(answer="Thing"), "post": _operation(body="Thing")},
            "/things/{thing_id}": {
                "parameters": _in_path("thing_id"),
                "delete": _operation(secured=True),
            },
            "/thingsX": {"get": _operation()},
            "/auth/token": {"post": _operation()},
            "/health": {"get": _operation()},
            "/ready": {"get": _operation()},
            "/metrics": {"get": _operation()},
            "/docs": {"get": _operation()},
            "/openapi.json": {"get": _operation()},
            "/inventory/reservations": {"post": _operation(body="Reservation", secured=True)},
            "/orders": {"get": _operation()},
        },
        _thing_schemas(),
    )


def _service_b() -> dict[str, Any]:
    return _document(
        {
            "/orders": {
                "post": {
                    **_operation(body="OrderCreate", secured=True),
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {
                                "anyOf": [{"type": "string", "maxLength": 255}, {"type": "null"}]
                            },
                        }
                    ],
                }
            },
            "/orders/{order_id}/cancel": {
                "parameters": _in_path("order_id"),
                "post": _operation(secured=True),
            },
            "/internal/reconcile": {"post": _operation()},
        },
        {"OrderCreate": {"type": "object", "properties": {"items": {"type": "array"}}}},
    )


def _build(a: dict[str, Any] | None = None, b: dict[str, Any] | None = None) -> dict[str, Any]:
    documents = {"svc-a": a or _service_a(), "svc-b": b or _service_b()}
    return build_document(documents, ROUTES, version="9.9.9")


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in build_openapi.HTTP_METHODS
    }


def test_only_the_routed_paths_are_kept_and_they_gain_the_api_prefix() -> None:
    document = _build()

    assert sorted(document["paths"]) == [
        "/api/auth/token",
        "/api/orders",
        "/api/orders/{order_id}/cancel",
        "/api/things",
        "/api/things/{thing_id}",
    ]


def test_a_path_of_another_services_prefix_is_not_taken_from_the_wrong_service() -> None:
    document = _build()

    # svc-a's document also has GET /orders; the gateway sends /api/orders to svc-b only.
    assert set(document["paths"]["/api/orders"]) == {"post"}


def test_only_the_components_of_routed_paths_are_kept_with_what_they_refer_to() -> None:
    schemas = _build()["components"]["schemas"]

    assert {"Thing", "Part", "OrderCreate", "Problem"} <= set(schemas)
    assert "Reservation" not in schemas


def test_identical_components_of_two_services_are_kept_once() -> None:
    a, b = _service_a(), _service_b()
    shared = {"type": "object", "properties": {"n": {"type": "integer"}}}
    a["components"]["schemas"]["Shared"] = shared
    b["components"]["schemas"]["Shared"] = copy.deepcopy(shared)
    a["paths"]["/things"]["get"] = _operation(answer="Shared")
    b["paths"]["/orders"]["post"]["responses"]["200"] = {
        "description": "OK",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Shared"}}},
    }

    schemas = _build(a, b)["components"]["schemas"]

    assert schemas["Shared"] == shared


def test_different_components_under_one_name_stop_the_build() -> None:
    a, b = _service_a(), _service_b()
    b["components"]["schemas"]["Thing"] = {"type": "string"}
    b["paths"]["/orders"]["post"]["responses"]["200"] = {
        "description": "OK",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}},
    }

    with pytest.raises(BuildError, match=r"schemas/Thing differs between svc-a and svc-b"):
        _build(a, b)


def test_a_clash_in_a_component_of_an_unrouted_path_does_not_matter() -> None:
    b = _service_b()
    b["components"]["schemas"]["Reservation"] = {"type": "string"}
    b["paths"]["/internal/reconcile"]["post"] = _operation(body="Reservation")

    assert "Reservation" not in _build(b=b)["components"]["schemas"]


def test_an_undefined_reference_stops_the_build() -> None:
    a = _service_a()
    a["paths"]["/things"]["get"] = _operation(answer="Missing")

    with pytest.raises(BuildError, match=r"svc-a: #/components/schemas/Missing"):
        _build(a)


def test_an_operation_id_used_by_two_services_stops_the_build() -> None:
    a, b = _service_a(), _service_b()
    a["paths"]["/things"]["get"]["operationId"] = "list"
    b["paths"]["/orders"]["post"]["operationId"] = "list"

    with pytest.raises(BuildError, match=r"operationId 'list' is used by svc-a and svc-b"):
        _build(a, b)


def test_only_openapi_3_1_documents_are_accepted() -> None:
    a = _service_a()
    a["openapi"] = "3.0.3"

    with pytest.raises(BuildError, match=r"svc-a: expected an OpenAPI 3\.1 document"):
        _build(a)


RATE_LIMIT_HEADERS = {
    "Retry-After": {"$ref": "#/components/headers/Retry-After"},
    "RateLimit-Policy": {"$ref": "#/components/headers/RateLimit-Policy"},
    "RateLimit": {"$ref": "#/components/headers/RateLimit"},
}


def test_every_operation_gets_the_gateways_answers_and_413_only_with_a_body() -> None:
    document = _build()

    for (method, path), operation in _operations(document).items():
        statuses = set(operation["responses"])
        assert statuses >= GATEWAY_STATUSES, (method, path)
        assert ("413" in statuses) == ("requestBody" in operation), (method, path)
        for status in statuses & set(OPERATION_PROBLEM_TYPES):
            answer = operation["responses"][status]
            assert list(answer["content"]) == ["application/problem+json"]
            assert answer["x-problem-types"] == [OPERATION_PROBLEM_TYPES[status]]
        assert operation["responses"]["429"]["headers"] == RATE_LIMIT_HEADERS
        assert operation["responses"]["503"]["headers"] == {
            "Retry-After": {"$ref": "#/components/headers/Retry-After"}
        }
        assert "headers" not in operation["responses"]["502"]
    assert set(document["components"]["headers"]) == set(RATE_LIMIT_HEADERS)
    assert "responses" not in document["components"]


def test_a_services_own_answer_for_a_gateway_status_is_kept_and_completed() -> None:
    a = _service_a()
    own = _problem_response("Quota used up.")
    own["headers"] = {"Retry-After": {"description": "Its own.", "schema": {"type": "string"}}}
    own["x-problem-types"] = ["urn:fleet:chat:quota-exceeded", "urn:fleet:common:rate-limited"]
    a["paths"]["/things"]["get"]["responses"]["429"] = own
    b = _service_b()
    b["paths"]["/orders"]["post"]["responses"]["503"] = _problem_response("Database down.")

    document = _build(a, b)
    answer = document["paths"]["/api/things"]["get"]["responses"]["429"]
    unavailable = document["paths"]["/api/orders"]["post"]["responses"]["503"]

    assert answer["description"].startswith("Quota used up.\n\nFrom the gateway: Too many")
    assert answer["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }
    assert answer["headers"] == {
        "Retry-After": {"description": "Its own.", "schema": {"type": "string"}},
        "RateLimit-Policy": {"$ref": "#/components/headers/RateLimit-Policy"},
        "RateLimit": {"$ref": "#/components/headers/RateLimit"},
    }
    assert answer["x-problem-types"] == [
        "urn:fleet:chat:quota-exceeded",
        "urn:fleet:common:rate-limited",
    ]
    assert unavailable["x-problem-types"] == ["urn:fleet:common:service-unavailable"]
    validate(document)


def _entry(problem_type: str, status: int, title: str = "T") -> dict[str, Any]:
    return {"type": problem_type, "status": status, "title": title, "description": "D."}


def test_without_service_catalogues_the_catalogue_is_the_gateways() -> None:
    catalogue = _build()["x-problem-types"]

    assert catalogue == sorted(build_openapi.GATEWAY_PROBLEM_TYPES, key=lambda e: e["type"])
    assert {entry["status"] for entry in catalogue} == {400, 404, 413, 429, 502, 503, 504}


def test_the_catalogue_is_the_union_of_the_services_and_the_gateways() -> None:
    rate_limited = _entry("urn:fleet:common:rate-limited", 429, "Too Many Requests (common-libs)")
    a, b = _service_a(), _service_b()
    a["x-problem-types"] = [
        _entry("urn:fleet:a:thing-not-found", 404),
        _entry("urn:fleet:a:reservation-not-held", 409),
        rate_limited,
    ]
    b["x-problem-types"] = [rate_limited, _entry("urn:fleet:orders:out-of-stock", 409)]
    a["paths"]["/things/{thing_id}"]["delete"]["responses"]["404"] = {
        **_problem_response("No such thing."),
        "x-problem-types": ["urn:fleet:a:thing-not-found"],
    }
    # Listed only by an internal route: clients never meet it.
    a["paths"]["/inventory/reservations"]["post"]["responses"]["409"] = {
        **_problem_response("Not held."),
        "x-problem-types": ["urn:fleet:a:reservation-not-held"],
    }
    b["paths"]["/orders"]["post"]["responses"]["409"] = {
        **_problem_response("Out of stock."),
        "x-problem-types": ["urn:fleet:orders:out-of-stock"],
    }

    document = _build(a, b)
    by_type = {entry["type"]: entry for entry in document["x-problem-types"]}

    assert list(by_type) == sorted(by_type)
    assert "urn:fleet:a:reservation-not-held" not in by_type
    assert by_type["urn:fleet:a:thing-not-found"] == _entry("urn:fleet:a:thing-not-found", 404)
    assert by_type["urn:fleet:orders:out-of-stock"]["status"] == 409
    # A service's entry (common-libs' wording) wins over the gateway's for the same type.
    assert by_type["urn:fleet:common:rate-limited"] == rate_limited
    gateway_only = {e["type"] for e in build_openapi.GATEWAY_PROBLEM_TYPES} - {rate_limited["type"]}
    assert gateway_only <= set(by_type)
    validate(document)


def test_a_type_two_services_describe_differently_stops_the_build() -> None:
    a, b = _service_a(), _service_b()
    a["x-problem-types"] = [_entry("urn:fleet:common:not-found", 404, "Not Found")]
    b["x-problem-types"] = [_entry("urn:fleet:common:not-found", 404, "Missing")]

    with pytest.raises(BuildError, match=r"'urn:fleet:common:not-found' differs between svc-a"):
        _build(a, b)


def test_a_gateway_type_with_another_status_in_a_service_stops_the_build() -> None:
    a = _service_a()
    a["x-problem-types"] = [_entry("urn:fleet:common:upstream-timeout", 408)]

    with pytest.raises(BuildError, match=r"is status 408 in svc-a but 504 at the gateway"):
        _build(a)


@pytest.mark.parametrize("catalogue", [{"type": "x"}, [{"type": "x"}], ["x"]])
def test_a_malformed_catalogue_stops_the_build(catalogue: Any) -> None:
    a = _service_a()
    a["x-problem-types"] = catalogue

    with pytest.raises(BuildError, match=r"svc-a: "):
        _build(a)


def test_operations_with_a_bearer_token_also_accept_the_oauth2_password_flow() -> None:
    document = _build()
    operations = _operations(document)
    schemes = document["components"]["securitySchemes"]

    assert operations["delete", "/api/things/{thing_id}"]["security"] == [
        {"HTTPBearer": []},
        {"OAuth2Password": []},
    ]
    assert "security" not in operations["get", "/api/things"]
    assert schemes["HTTPBearer"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert schemes["OAuth2Password"]["flows"] == {
        "password": {"tokenUrl": "/api/auth/token", "scopes": {}}
    }


def test_a_documents_default_security_applies_to_its_operations() -> None:
    a = _service_a()
    a["security"] = [{"HTTPBearer": []}]

    operation = _operations(_build(a))["get", "/api/things"]

    assert operation["security"] == [{"HTTPBearer": []}, {"OAuth2Password": []}]


def test_operations_are_tagged_by_service_in_the_tables_order() -> None:
    document = _build()

    assert [tag["name"] for tag in document["tags"]] == ["A", "B"]
    assert "served by svc-a" in document["tags"][0]["description"]
    assert {tuple(op["tags"]) for op in _operations(document).values()} == {("A",), ("B",)}


def test_examples_are_added_where_the_service_has_none_and_kept_where_it_has() -> None:
    b = _service_b()
    order = _build(b=b)["paths"]["/api/orders"]["post"]
    own: dict[str, Any] = {"mine": {"value": {"items": []}}}
    b["paths"]["/orders"]["post"]["requestBody"]["content"]["application/json"]["examples"] = own
    kept = _build(b=b)["paths"]["/api/orders"]["post"]

    added = order["requestBody"]["content"]["application/json"]["examples"]
    assert "shipping_address" in next(iter(added.values()))["value"]
    assert kept["requestBody"]["content"]["application/json"]["examples"] == own


def test_the_idempotency_key_is_required_as_the_contract_says() -> None:
    parameter = _build()["paths"]["/api/orders"]["post"]["parameters"][0]

    assert parameter["required"] is True
    assert parameter["schema"] == {"type": "string", "maxLength": 255}


def test_the_document_is_valid_openapi_3_1_with_a_relative_server() -> None:
    document = _build()

    validate(document)
    assert document["openapi"] == "3.1.0"
    assert document["servers"][0]["url"] == "/"
    assert document["info"]["version"] == "9.9.9"


def test_render_is_two_space_indented_sorted_and_ends_with_a_newline() -> None:
    text = build_openapi.render({"b": 1, "a": {"d": "é", "c": 2}})

    assert text == '{\n  "a": {\n    "c": 2,\n    "d": "é"\n  },\n  "b": 1\n}\n'


def _write_inputs(directory: Path) -> list[str]:
    """Small documents for the four real services; the options that point main() at them."""
    options = []
    for row in build_openapi.load_routes():
        paths = {f"/{prefix}": {"get": _operation()} for prefix in row.prefixes}
        paths["/health"] = {"get": _operation()}
        source = directory / f"{row.service}.json"
        source.write_text(json.dumps(_document(paths)), encoding="utf-8")
        options += [f"--{row.service}", str(source)]
    return options


def test_main_writes_the_document_and_check_tells_whether_it_is_current(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out" / "openapi.json"
    options = [*_write_inputs(tmp_path), "--output", str(output)]

    assert build_openapi.main(options) == 0
    written = output.read_text(encoding="utf-8")
    assert written.endswith("}\n")
    assert "/api/chat" in json.loads(written)["paths"]
    assert build_openapi.main([*options, "--check"]) == 0

    output.write_text(written.replace('"/api/chat"', '"/api/chatty"'), encoding="utf-8")
    capsys.readouterr()
    assert build_openapi.main([*options, "--check"]) == 1
    captured = capsys.readouterr()
    assert '-    "/api/chatty": {' in captured.out
    assert '+    "/api/chat": {' in captured.out
    assert "out of date" in captured.err
    assert output.read_text(encoding="utf-8") != written


def test_main_reports_an_unreadable_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = _write_inputs(tmp_path)
    (tmp_path / "chat-llm-service.json").write_text("{not json", encoding="utf-8")

    assert build_openapi.main([*options, "--output", str(tmp_path / "o.json")]) == 1
    assert "cannot read chat-llm-service's document" in capsys.readouterr().err
    assert not (tmp_path / "o.json").exists()
