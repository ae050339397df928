"""The OpenAPI snapshot: each rule of the checker on small hand-made documents, both ways, and
the test helper and ``make openapi``'s writer."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from common_libs.testing.openapi_snapshot import (
    Difference,
    check_openapi_snapshot,
    compare_openapi,
    main,
    offline_document,
    openapi_json,
    snapshot_report,
    update_openapi_snapshot,
)

Document = dict[str, Any]
ITEM = "#/components/schemas/Item"
JSON = "application/json"


def document(paths: dict[str, Any], **schemas: Any) -> Document:
    return {
        "openapi": "3.1.0",
        "info": {"title": "items", "version": "1.0.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def ok(schema: Any, *, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": "OK", "content": {JSON: {"schema": schema}}}
    if headers is not None:
        response["headers"] = headers
    return {"200": response}


def returning(schema: Any, **schemas: Any) -> Document:
    """GET /items answering 200 with ``schema``."""
    return document({"/items": {"get": {"responses": ok(schema)}}}, **schemas)


def accepting(schema: Any, **schemas: Any) -> Document:
    """POST /items reading a required body of ``schema``."""
    body = {"required": True, "content": {JSON: {"schema": schema}}}
    return document({"/items": {"post": {"requestBody": body, "responses": ok({})}}}, **schemas)


def with_parameters(*parameters: dict[str, Any]) -> Document:
    return document({"/items": {"get": {"parameters": list(parameters), "responses": ok({})}}})


def query(name: str, schema: Any, *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


def obj(required: tuple[str, ...] = (), **properties: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def diff(old: Document, new: Document) -> list[str]:
    return [str(difference) for difference in compare_openapi(old, new)]


STRING = {"type": "string"}
INTEGER = {"type": "integer"}
NULLABLE_STRING = {"anyOf": [STRING, {"type": "null"}]}
GET = "GET /items response 200 application/json"
POST = "POST /items request body application/json"


# --- equal documents, paths, operations ----------------------------------------------------------


def test_equal_documents_have_no_difference() -> None:
    assert compare_openapi(returning(STRING), returning(STRING)) == []


def test_a_removed_path_is_breaking_and_a_new_one_additive() -> None:
    old = document({"/items": {"get": {"responses": ok({})}}})
    new = document({"/things": {"get": {"responses": ok({})}}})

    assert diff(old, new) == ["BREAKING: /items: path removed", "additive: /things: new path"]


def test_renaming_a_path_parameter_is_the_same_path() -> None:
    def items(name: str) -> Document:
        parameter = {"name": name, "in": "path", "required": True, "schema": STRING}
        return document({f"/items/{{{name}}}": {"get": {"parameters": [parameter]}}})

    assert diff(items("id"), items("item_id")) == [
        "additive: /items/{id}: path parameters renamed: /items/{item_id}"
    ]


def test_a_removed_operation_is_breaking_and_a_new_one_additive() -> None:
    old = document({"/items": {"get": {"responses": ok({})}}})
    new = document({"/items": {"post": {"responses": ok({})}}})

    assert diff(old, new) == [
        "BREAKING: GET /items: operation removed",
        "additive: POST /items: new operation",
    ]


def test_a_changed_or_removed_operation_id_is_breaking_and_a_new_one_additive() -> None:
    def named(operation_id: str | None) -> Document:
        operation: dict[str, Any] = {"responses": ok({})}
        if operation_id:
            operation["operationId"] = operation_id
        return document({"/items": {"get": operation}})

    assert diff(named("list"), named("list_items")) == [
        'BREAKING: GET /items: operationId "list" -> "list_items"'
    ]
    assert diff(named("list"), named(None)) == ['BREAKING: GET /items: operationId "list" -> null']
    assert diff(named(None), named("list")) == ['additive: GET /items: new operationId "list"']


# --- security ------------------------------------------------------------------------------------


def secured(*options: dict[str, list[str]] | None) -> Document:
    operation: dict[str, Any] = {"responses": ok({})}
    if options != (None,):
        operation["security"] = list(options)
    return document({"/items": {"get": operation}})


def test_security_added_to_an_open_operation_is_breaking_and_removed_additive() -> None:
    assert diff(secured(None), secured({"bearer": []})) == [
        "BREAKING: GET /items: security: a caller with no credentials is refused now (needs bearer)"
    ]
    assert diff(secured({"bearer": []}), secured(None)) == [
        "additive: GET /items: security: needs no credentials"
    ]


def test_a_new_scope_is_breaking_and_a_new_alternative_additive() -> None:
    assert diff(secured({"oauth": ["read"]}), secured({"oauth": ["read", "write"]})) == [
        "BREAKING: GET /items: security: a caller with oauth ['read'] is refused now "
        "(needs oauth ['read', 'write'])"
    ]
    assert diff(secured({"bearer": []}), secured({"bearer": []}, {"key": []})) == [
        "additive: GET /items: security: needs bearer or key"
    ]


def test_the_documents_security_applies_to_operations_without_their_own() -> None:
    old = secured(None)
    new = secured(None)
    new["security"] = [{"bearer": []}]

    assert diff(old, new) == [
        "BREAKING: GET /items: security: a caller with no credentials is refused now "
        "(needs bearer)",
        'additive: /security: added [{"bearer": []}]',
    ]


# --- responses -----------------------------------------------------------------------------------


def test_a_removed_response_status_is_breaking_and_a_new_one_additive() -> None:
    old = document({"/items": {"get": {"responses": {"200": {"description": "OK"}}}}})
    new = document({"/items": {"get": {"responses": {"201": {"description": "OK"}}}}})

    assert diff(old, new) == [
        "BREAKING: GET /items response 200: removed",
        "additive: GET /items response 201: new response",
    ]


def test_a_removed_response_content_type_is_breaking_and_a_new_one_additive() -> None:
    old = returning(STRING)
    new = returning(STRING)
    new["paths"]["/items"]["get"]["responses"]["200"]["content"] = {"text/plain": {"schema": {}}}

    assert diff(old, new) == [
        "BREAKING: GET /items response 200: content type application/json removed",
        "additive: GET /items response 200: new content type text/plain",
    ]


def test_response_headers_removed_are_breaking_added_additive_and_compared() -> None:
    def answering(**headers: Any) -> Document:
        return document({"/items": {"get": {"responses": ok({}, headers=headers)}}})

    digits = {"schema": {"type": "string", "pattern": "^[0-9]+$"}}

    assert diff(answering(**{"Retry-After": digits}), answering(ETag={"schema": STRING})) == [
        "BREAKING: GET /items response 200: header Retry-After removed",
        "additive: GET /items response 200: new header ETag",
    ]
    assert diff(answering(**{"Retry-After": digits}), answering(**{"Retry-After": {}})) == [
        "BREAKING: GET /items response 200 header Retry-After: may now be any value (was string)",
        "additive: GET /items response 200 header Retry-After: no longer string",
    ]
    assert diff(
        answering(**{"Retry-After": digits}), answering(**{"Retry-After": {"schema": STRING}})
    ) == ['BREAKING: GET /items response 200 header Retry-After: pattern "^[0-9]+$" -> null']


def test_responses_parameters_and_bodies_filed_under_components_are_followed() -> None:
    def shared(name_type: str) -> Document:
        operation = {
            "parameters": [{"$ref": "#/components/parameters/Limit"}],
            "requestBody": {"$ref": "#/components/requestBodies/New"},
            "responses": {"200": {"$ref": "#/components/responses/Items"}},
        }
        result = document({"/items": {"post": operation}})
        result["components"].update(
            {
                "parameters": {"Limit": query("limit", {"type": name_type})},
                "requestBodies": {"New": {"content": {JSON: {"schema": {"type": name_type}}}}},
                "responses": {
                    "Items": {"description": "OK", "content": {JSON: {"schema": STRING}}}
                },
            }
        )
        return result

    assert diff(shared("integer"), shared("number")) == [
        'additive: POST /items query parameter "limit": number now accepted',
        "additive: POST /items request body application/json: body: number now accepted",
    ]


def test_a_removed_response_property_is_breaking_and_a_new_one_additive() -> None:
    old = returning(obj(("id", "name"), id=STRING, name=STRING))
    new = returning(obj(("id", "title"), id=STRING, title=STRING))

    assert diff(old, new) == [
        f"BREAKING: {GET}: body.name: property removed",
        f"additive: {GET}: body.title: new property",
    ]


def test_response_properties_are_followed_into_components_nested_objects_and_arrays() -> None:
    def page(**item: Any) -> Document:
        return returning(
            obj(items={"type": "array", "items": {"$ref": ITEM}}),
            Item=obj(price=obj(amount=STRING, **item)),
        )

    assert diff(page(currency=STRING), page()) == [
        f"BREAKING: {GET}: body.items[].price.currency: property removed"
    ]


def test_a_response_property_that_is_no_longer_required_is_breaking() -> None:
    required = returning(obj(("id",), id=STRING))
    optional = returning(obj(id=STRING))

    assert diff(required, optional) == [f"BREAKING: {GET}: body.id: no longer always present"]
    assert diff(optional, required) == [f"additive: {GET}: body.id: now always present"]


def test_a_response_type_change_is_breaking() -> None:
    assert diff(returning(obj(n=STRING)), returning(obj(n=INTEGER))) == [
        f"BREAKING: {GET}: body.n: may now be integer (was string)",
        f"additive: {GET}: body.n: no longer string",
    ]


def test_a_response_value_that_may_now_be_null_is_breaking_and_no_longer_null_additive() -> None:
    assert diff(returning(obj(n=STRING)), returning(obj(n=NULLABLE_STRING))) == [
        f"BREAKING: {GET}: body.n: may now be null (was string)"
    ]
    assert diff(returning(obj(n=NULLABLE_STRING)), returning(obj(n=STRING))) == [
        f"additive: {GET}: body.n: no longer null"
    ]


def test_a_response_integer_that_may_now_be_any_number_is_breaking() -> None:
    number = {"type": "number"}

    assert diff(returning(INTEGER), returning(number)) == [
        f"BREAKING: {GET}: body: may now be number (was integer)",
        f"additive: {GET}: body: no longer integer",
    ]
    assert diff(returning(number), returning(INTEGER)) == [
        f"additive: {GET}: body: no longer number"
    ]


def test_a_new_enum_value_in_a_response_is_breaking_and_a_removed_one_additive() -> None:
    def status(*values: str) -> Document:
        return returning({"type": "string", "enum": list(values)})

    assert diff(status("pending", "paid"), status("pending", "paid", "refunded")) == [
        f'BREAKING: {GET}: body: value "refunded" may now be returned (new enum value)'
    ]
    assert diff(status("pending", "paid"), status("pending")) == [
        f'additive: {GET}: body: value "paid" no longer returned'
    ]


def test_a_response_enum_dropped_is_breaking_and_added_additive() -> None:
    limited = returning({"type": "string", "enum": ["a"]})

    assert diff(limited, returning(STRING)) == [f'BREAKING: {GET}: body: no longer limited to "a"']
    assert diff(returning(STRING), limited) == [f'additive: {GET}: body: now limited to "a"']


def test_a_const_is_an_enum_of_one_value() -> None:
    old = returning({"type": "string", "const": "a"})
    new = returning({"type": "string", "enum": ["a", "b"]})

    assert diff(old, new) == [
        f'BREAKING: {GET}: body: value "b" may now be returned (new enum value)'
    ]


def test_a_loosened_response_bound_is_breaking_and_a_tightened_one_additive() -> None:
    def upto(length: int | None) -> Document:
        return returning(STRING if length is None else {"type": "string", "maxLength": length})

    assert diff(upto(10), upto(20)) == [f"BREAKING: {GET}: body: maxLength 10 -> 20"]
    assert diff(upto(10), upto(None)) == [f"BREAKING: {GET}: body: maxLength 10 -> null"]
    assert diff(upto(20), upto(10)) == [f"additive: {GET}: body: maxLength 20 -> 10"]
    assert diff(upto(None), upto(10)) == [f"additive: {GET}: body: maxLength null -> 10"]


def test_a_removed_response_pattern_or_format_is_breaking_and_an_added_one_additive() -> None:
    uuid = returning({"type": "string", "format": "uuid"})

    assert diff(uuid, returning(STRING)) == [f'BREAKING: {GET}: body: format "uuid" -> null']
    assert diff(returning(STRING), uuid) == [f'additive: {GET}: body: format null -> "uuid"']


def test_map_values_are_compared() -> None:
    def counts(value: Any) -> Document:
        return returning({"type": "object", "additionalProperties": value})

    assert diff(counts(INTEGER), counts(STRING)) == [
        f"BREAKING: {GET}: body.*: may now be string (was integer)",
        f"additive: {GET}: body.*: no longer integer",
    ]
    assert diff(counts(False), counts(True)) == [
        f"additive: {GET}: body: additionalProperties false -> true"
    ]


def test_a_union_of_components_is_compared_component_by_component() -> None:
    def pets(**cat: Any) -> Document:
        union = {
            "oneOf": [{"$ref": "#/components/schemas/Dog"}, {"$ref": "#/components/schemas/Cat"}]
        }
        return returning(
            union, Dog=obj(("barks",), barks={"type": "boolean"}), Cat=obj(("purrs",), **cat)
        )

    assert diff(pets(purrs={"type": "boolean"}), pets(purrs=STRING)) == [
        f"BREAKING: {GET}: body.purrs: may now be string (was boolean)",
        f"additive: {GET}: body.purrs: no longer boolean",
    ]


def test_inline_alternatives_are_matched_with_the_one_that_breaks_least() -> None:
    def shapes(circle: dict[str, Any]) -> Document:
        return returning({"anyOf": [obj(side=INTEGER), circle]})

    assert diff(shapes(obj(radius=INTEGER)), shapes(obj(radius=INTEGER, centre=STRING))) == [
        f"additive: {GET}: body.centre: new property"
    ]


def test_all_of_is_merged() -> None:
    def named(**extra: Any) -> Document:
        return returning(
            {"allOf": [{"$ref": "#/components/schemas/Base"}, obj(("name",), name=STRING)]},
            Base={"allOf": [obj(("id",), id=STRING, **extra)], "description": "base"},
        )

    assert diff(named(created=STRING), named()) == [
        f"BREAKING: {GET}: body.created: property removed"
    ]


def test_recursive_schemas_are_compared_once_per_path() -> None:
    def tree(**extra: Any) -> Document:
        node = obj(children={"type": "array", "items": {"$ref": "#/components/schemas/Node"}})
        node["properties"].update(extra)
        return returning({"$ref": "#/components/schemas/Node"}, Node=node)

    assert diff(tree(label=STRING), tree()) == [f"BREAKING: {GET}: body.label: property removed"]


def test_openapi_3_0_nullable_and_type_lists_are_unions() -> None:
    nullable = returning({"type": "string", "nullable": True})
    listed = returning({"type": ["string", "null"], "nullable": True})

    assert diff(returning(STRING), nullable) == [
        f"BREAKING: {GET}: body: may now be null (was string)"
    ]
    assert not any(difference.breaking for difference in compare_openapi(nullable, listed))
    assert diff(listed, returning(STRING)) == [f"additive: {GET}: body: no longer null"]


def test_a_schema_without_a_type_takes_it_from_its_keywords() -> None:
    pointer = "/paths/~1items/get/responses/200/content/application~1json/schema"

    assert diff(returning({"properties": {"a": STRING}}), returning(obj(a=STRING))) == [
        f'additive: {pointer}/type: added "object"'
    ]
    assert diff(returning({"items": STRING}), returning({"type": "array", "items": STRING})) == [
        f'additive: {pointer}/type: added "array"'
    ]
    assert diff(returning({"type": "array", "items": True}), returning({"type": "array"})) == [
        f"additive: {pointer}/items: removed"
    ]


def test_any_value_in_a_response_is_breaking() -> None:
    assert diff(returning(STRING), returning({})) == [
        f"BREAKING: {GET}: body: may now be any value (was string)",
        f"additive: {GET}: body: no longer string",
    ]


def test_openapi_3_0_boolean_exclusive_bounds_are_not_numbers() -> None:
    old = returning({"type": "integer", "minimum": 1, "exclusiveMinimum": True})
    new = returning({"type": "integer", "minimum": 1})

    assert diff(old, new) == [
        "additive: /paths/~1items/get/responses/200/content/application~1json/schema"
        "/exclusiveMinimum: removed"
    ]


# --- request bodies ------------------------------------------------------------------------------


def test_a_new_required_request_property_is_breaking_and_a_new_optional_one_additive() -> None:
    old = accepting(obj(("name",), name=STRING))
    new = accepting(obj(("name", "sku"), name=STRING, sku=STRING, note=STRING))

    assert diff(old, new) == [
        f"BREAKING: {POST}: body.sku: new required property",
        f"additive: {POST}: body.note: new optional property",
    ]


def test_a_request_property_made_required_is_breaking_and_made_optional_additive() -> None:
    required = accepting(obj(("name",), name=STRING))
    optional = accepting(obj(name=STRING))

    assert diff(optional, required) == [f"BREAKING: {POST}: body.name: became required"]
    assert diff(required, optional) == [f"additive: {POST}: body.name: became optional"]


def test_a_removed_request_property_is_ignored_unless_unknown_ones_are_refused() -> None:
    old = accepting(obj(name=STRING, note=STRING))
    strict = accepting({**obj(name=STRING), "additionalProperties": False})

    assert diff(old, accepting(obj(name=STRING))) == [
        f"additive: {POST}: body.note: property removed (ignored when sent)"
    ]
    assert diff(old, strict) == [
        f"BREAKING: {POST}: body.note: property removed (now refused when sent)",
        f"BREAKING: {POST}: body: unknown properties now refused",
    ]
    assert diff(strict, accepting(obj(name=STRING))) == [
        f"additive: {POST}: body: additionalProperties false -> null"
    ]


def test_a_removed_request_enum_value_is_breaking_and_a_new_one_additive() -> None:
    def currency(*values: str) -> Document:
        return accepting(obj(currency={"type": "string", "enum": list(values)}))

    assert diff(currency("EUR", "USD"), currency("EUR")) == [
        f'BREAKING: {POST}: body.currency: value "USD" no longer accepted'
    ]
    assert diff(currency("EUR"), currency("EUR", "USD")) == [
        f'additive: {POST}: body.currency: value "USD" now accepted'
    ]


def test_a_request_enum_added_is_breaking_and_dropped_additive() -> None:
    limited = accepting({"type": "string", "enum": ["a", "b"]})

    assert diff(accepting(STRING), limited) == [f'BREAKING: {POST}: body: now limited to "a", "b"']
    assert diff(limited, accepting(STRING)) == [
        f'additive: {POST}: body: no longer limited to "a", "b"'
    ]


def test_a_request_type_narrowed_or_changed_is_breaking_and_widened_additive() -> None:
    assert diff(accepting(obj(n=NULLABLE_STRING)), accepting(obj(n=STRING))) == [
        f"BREAKING: {POST}: body.n: null no longer accepted (now string)"
    ]
    assert diff(accepting(obj(n=STRING)), accepting(obj(n=NULLABLE_STRING))) == [
        f"additive: {POST}: body.n: null now accepted"
    ]
    assert diff(accepting(obj(n=STRING)), accepting(obj(n=INTEGER))) == [
        f"BREAKING: {POST}: body.n: string no longer accepted (now integer)",
        f"additive: {POST}: body.n: integer now accepted",
    ]
    assert diff(accepting({"type": "number"}), accepting(INTEGER)) == [
        f"BREAKING: {POST}: body: number no longer accepted (now integer)",
        f"additive: {POST}: body: integer now accepted",
    ]
    assert diff(accepting({}), accepting(STRING)) == [
        f"BREAKING: {POST}: body: any value no longer accepted (now string)",
        f"additive: {POST}: body: string now accepted",
    ]


def test_a_tightened_request_bound_is_breaking_and_a_loosened_one_additive() -> None:
    def at_least(minimum: int | None) -> Document:
        return accepting(INTEGER if minimum is None else {"type": "integer", "minimum": minimum})

    assert diff(at_least(1), at_least(5)) == [f"BREAKING: {POST}: body: minimum 1 -> 5"]
    assert diff(at_least(None), at_least(1)) == [f"BREAKING: {POST}: body: minimum null -> 1"]
    assert diff(at_least(5), at_least(1)) == [f"additive: {POST}: body: minimum 5 -> 1"]
    assert diff(at_least(1), at_least(None)) == [f"additive: {POST}: body: minimum 1 -> null"]


def test_a_request_pattern_added_or_changed_is_breaking_and_removed_additive() -> None:
    def sku(pattern: str | None) -> Document:
        return accepting(STRING if pattern is None else {"type": "string", "pattern": pattern})

    assert diff(sku(None), sku("^[A-Z]+$")) == [
        f'BREAKING: {POST}: body: pattern null -> "^[A-Z]+$"'
    ]
    assert diff(sku("^[A-Z]+$"), sku("^[A-Z0-9]+$")) == [
        f'BREAKING: {POST}: body: pattern "^[A-Z]+$" -> "^[A-Z0-9]+$"'
    ]
    assert diff(sku("^[A-Z]+$"), sku(None)) == [
        f'additive: {POST}: body: pattern "^[A-Z]+$" -> null'
    ]


def test_request_array_items_are_compared() -> None:
    old = accepting({"type": "array", "items": obj(sku=STRING)})
    new = accepting({"type": "array", "items": obj(("sku",), sku=STRING)})

    assert diff(old, new) == [f"BREAKING: {POST}: body[].sku: became required"]


def test_request_bodies_added_removed_made_required_or_optional() -> None:
    def body(*, required: bool | None, media_type: str = JSON) -> Document:
        operation: dict[str, Any] = {"responses": ok({})}
        if required is not None:
            content = {media_type: {"schema": STRING}}
            operation["requestBody"] = {"required": required, "content": content}
        return document({"/items": {"post": operation}})

    where = "POST /items request body"
    assert diff(body(required=None), body(required=True)) == [
        f"BREAKING: {where}: new required request body"
    ]
    assert diff(body(required=None), body(required=False)) == [
        f"additive: {where}: new optional request body"
    ]
    assert diff(body(required=True), body(required=None)) == [
        f"additive: {where}: removed (ignored when sent)"
    ]
    assert diff(body(required=False), body(required=True)) == [
        f"BREAKING: {where}: became required"
    ]
    assert diff(body(required=True), body(required=False)) == [
        f"additive: {where}: became optional"
    ]
    assert diff(body(required=True), body(required=True, media_type="text/plain")) == [
        f"BREAKING: {where}: content type application/json no longer accepted",
        f"additive: {where}: content type text/plain now accepted",
    ]


# --- parameters ----------------------------------------------------------------------------------


def test_a_new_required_parameter_is_breaking_and_a_new_optional_one_additive() -> None:
    old = with_parameters(query("q", STRING))
    new = with_parameters(
        query("q", STRING), query("tenant", STRING, required=True), query("page", INTEGER)
    )

    assert diff(old, new) == [
        'BREAKING: GET /items query parameter "tenant": new required parameter',
        'additive: GET /items query parameter "page": new optional parameter',
    ]


def test_a_removed_parameter_is_additive() -> None:
    assert diff(with_parameters(query("q", STRING)), with_parameters()) == [
        'additive: GET /items query parameter "q": removed (ignored when sent)'
    ]


def test_a_parameter_made_required_is_breaking_and_made_optional_additive() -> None:
    optional = with_parameters(query("q", STRING))
    required = with_parameters(query("q", STRING, required=True))

    assert diff(optional, required) == ['BREAKING: GET /items query parameter "q": became required']
    assert diff(required, optional) == ['additive: GET /items query parameter "q": became optional']


def test_a_parameter_type_narrowed_is_breaking() -> None:
    old = with_parameters(query("cursor", NULLABLE_STRING))
    new = with_parameters(query("cursor", {"type": "string", "maxLength": 100}))

    assert diff(old, new) == [
        'BREAKING: GET /items query parameter "cursor": maxLength null -> 100',
        'BREAKING: GET /items query parameter "cursor": null no longer accepted (now string)',
    ]


def test_path_level_parameters_are_the_operations_too() -> None:
    old = document({"/items": {"parameters": [query("q", STRING)], "get": {"responses": ok({})}}})
    new = document({"/items": {"get": {"responses": ok({})}}})

    assert diff(old, new) == [
        'additive: GET /items query parameter "q": removed (ignored when sent)'
    ]


# --- documentation, components, everything else --------------------------------------------------


def test_documentation_changes_are_additive_and_named_by_pointer() -> None:
    old = returning(obj(description=dict(STRING)), Item=obj(description=dict(STRING)))
    new = copy.deepcopy(old)
    new["info"]["version"] = "1.1.0"
    new["paths"]["/items"]["get"]["summary"] = "List items"
    new["paths"]["/items"]["get"]["x-internal"] = True
    new["components"]["schemas"]["Item"]["properties"]["description"]["description"] = "Free text"

    assert diff(old, new) == [
        'additive: /components/schemas/Item/properties/description/description: added "Free text"',
        'additive: /info/version: "1.0.0" -> "1.1.0"',
        'additive: /paths/~1items/get/summary: added "List items"',
        "additive: /paths/~1items/get/x-internal: added true",
    ]


def test_a_property_named_like_a_keyword_is_compared_as_a_property() -> None:
    old = returning(obj(description=STRING))
    new = returning(obj(description=INTEGER))

    assert diff(old, new) == [
        f"BREAKING: {GET}: body.description: may now be integer (was string)",
        f"additive: {GET}: body.description: no longer string",
    ]


def test_a_renamed_component_is_only_additive() -> None:
    old = returning({"$ref": "#/components/schemas/Item"}, Item=obj(id=STRING))
    new = returning({"$ref": "#/components/schemas/Thing"}, Thing=obj(id=STRING))

    assert diff(old, new) == [
        "additive: components: schema Item removed (its uses are compared)",
        "additive: components: new schema Thing",
    ]


def test_anything_else_is_listed_by_pointer() -> None:
    old = returning(STRING)
    old["servers"] = [{"url": "http://a"}]
    old["tags"] = [{"name": "items"}]
    new = copy.deepcopy(old)
    new["openapi"] = "3.1.1"
    new["servers"][0]["url"] = "http://b"
    new["tags"].append({"name": "more"})
    new["webhooks"] = {}
    del new["info"]

    assert diff(old, new) == [
        "additive: /info: removed",
        'additive: /tags: [{"name": "items"}] -> [{"name": "items"}, {"name": "more"}]',
        'additive: /openapi: "3.1.0" -> "3.1.1"',
        'additive: /servers/0/url: "http://a" -> "http://b"',
        "additive: /webhooks: added {}",
    ]


def test_when_no_rule_applies_the_differences_are_listed_by_pointer() -> None:
    old = returning({"$ref": ITEM}, Item=obj(id=STRING), Unused=STRING)
    new = returning({"$ref": ITEM}, Item=obj(id=STRING), Unused=INTEGER)
    new["x-generator"] = "fastapi"

    assert diff(old, new) == [
        'additive: /x-generator: added "fastapi"',
    ]
    del new["x-generator"]
    assert diff(old, new) == [
        'additive: /components/schemas/Unused/type: "string" -> "integer"',
    ]


def test_long_values_are_shortened() -> None:
    old = returning(STRING)
    new = copy.deepcopy(old)
    new["info"]["description"] = "x" * 200

    (difference,) = diff(old, new)
    assert difference == f'additive: /info/description: added "{"x" * 76}...'


def test_only_local_resolvable_references_are_compared() -> None:
    with pytest.raises(ValueError, match="only local references"):
        compare_openapi(returning(STRING), returning({"$ref": "other.json#/Item"}))
    with pytest.raises(ValueError, match="unresolvable reference"):
        compare_openapi(returning(STRING), returning({"$ref": "#/components/schemas/Missing"}))
    with pytest.raises(ValueError, match="references in a row"):
        compare_openapi(
            returning(STRING),
            returning({"$ref": ITEM}, Item={"$ref": ITEM}),
        )


# --- the snapshot --------------------------------------------------------------------------------


def test_the_snapshot_is_indented_with_sorted_keys_and_a_final_newline() -> None:
    text = openapi_json({"b": 1, "a": {"é": [1]}})

    assert text == '{\n  "a": {\n    "é": [\n      1\n    ]\n  },\n  "b": 1\n}\n'


def test_the_snapshot_check_passes_when_equal(tmp_path: Path) -> None:
    snapshot = tmp_path / "openapi.json"
    snapshot.write_text(openapi_json(returning(STRING)))

    check_openapi_snapshot(returning(STRING), snapshot)


def failure(document: Document, snapshot: Path) -> str:
    with pytest.raises(pytest.fail.Exception) as raised:
        check_openapi_snapshot(document, snapshot)
    return str(raised.value)


def test_a_missing_snapshot_fails(tmp_path: Path) -> None:
    assert failure(returning(STRING), tmp_path / "openapi.json") == (
        "openapi.json is missing: run `make openapi` and commit it"
    )


def test_a_snapshot_that_is_not_json_fails(tmp_path: Path) -> None:
    snapshot = tmp_path / "openapi.json"
    snapshot.write_text("<<<<<<< HEAD\n")

    assert failure(returning(STRING), snapshot).startswith("openapi.json is not valid JSON (")


def test_an_additive_change_fails_asking_for_make_openapi(tmp_path: Path) -> None:
    snapshot = tmp_path / "openapi.json"
    snapshot.write_text(openapi_json(returning(obj(id=STRING))))

    assert failure(returning(obj(id=STRING, name=STRING)), snapshot) == (
        "openapi.json is not the OpenAPI document the app generates:\n"
        f"  additive: {GET}: body.name: new property\n"
        "Additive changes only: run `make openapi` and commit openapi.json."
    )


def test_a_breaking_change_fails_naming_it_and_the_versioning_policy(tmp_path: Path) -> None:
    snapshot = tmp_path / "openapi.json"
    snapshot.write_text(openapi_json(returning(obj(id=STRING, name=STRING))))

    message = failure(returning(obj(id=STRING)), snapshot)

    assert message.splitlines()[:2] == [
        "openapi.json is not the OpenAPI document the app generates:",
        f"  BREAKING: {GET}: body.name: property removed",
    ]
    assert "new major version" in message
    assert "deprecation period (see the versioning policy)" in message
    assert "`make openapi BREAKING=1`" in message


def test_a_snapshot_in_another_format_fails(tmp_path: Path) -> None:
    snapshot = tmp_path / "openapi.json"
    snapshot.write_text(json.dumps(returning(STRING)))

    assert failure(returning(STRING), snapshot) == snapshot_report("openapi.json", [])
    assert "not in the format `make openapi` writes" in snapshot_report("openapi.json", [])


def test_a_report_lists_breaking_and_additive_changes() -> None:
    report = snapshot_report(
        "openapi.json", [Difference(True, "GET /a", "removed"), Difference(False, "/b", "new")]
    )

    assert report.splitlines()[1:3] == ["  BREAKING: GET /a: removed", "  additive: /b: new"]


# --- make openapi --------------------------------------------------------------------------------


def test_make_openapi_writes_a_missing_snapshot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = tmp_path / "openapi.json"

    assert update_openapi_snapshot(returning(STRING), snapshot) == 0
    assert snapshot.read_text() == openapi_json(returning(STRING))
    assert capsys.readouterr().out == "wrote openapi.json\n"
    assert update_openapi_snapshot(returning(STRING), snapshot) == 0
    assert capsys.readouterr().out == "openapi.json is up to date\n"


def test_make_openapi_writes_additive_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = tmp_path / "openapi.json"
    snapshot.write_text(openapi_json(returning(obj(id=STRING))))

    assert update_openapi_snapshot(returning(obj(id=STRING, name=STRING)), snapshot) == 0
    assert snapshot.read_text() == openapi_json(returning(obj(id=STRING, name=STRING)))
    assert capsys.readouterr().out == (
        f"  additive: {GET}: body.name: new property\nwrote openapi.json\n"
    )
    assert not (tmp_path / "openapi.json.tmp").exists()


def test_make_openapi_refuses_a_breaking_change_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BREAKING", raising=False)
    snapshot = tmp_path / "openapi.json"
    committed = openapi_json(returning(obj(id=STRING, name=STRING)))
    snapshot.write_text(committed)

    assert update_openapi_snapshot(returning(obj(id=STRING)), snapshot) == 1
    assert snapshot.read_text() == committed
    output = capsys.readouterr().out
    assert output.startswith(f"  BREAKING: {GET}: body.name: property removed\n")
    assert "refusing to write openapi.json" in output
    assert "new major version of the API and a deprecation period" in output
    assert "`make openapi BREAKING=1` writes it" in output


def test_make_openapi_writes_a_breaking_change_with_breaking_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BREAKING", "1")
    snapshot = tmp_path / "openapi.json"
    snapshot.write_text(openapi_json(returning(obj(id=STRING, name=STRING))))

    assert update_openapi_snapshot(returning(obj(id=STRING)), snapshot) == 0
    assert snapshot.read_text() == openapi_json(returning(obj(id=STRING)))
    assert "BREAKING=1: writing openapi.json with breaking changes" in capsys.readouterr().out


def test_make_openapi_does_not_overwrite_a_snapshot_it_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = tmp_path / "openapi.json"
    snapshot.write_text("{")

    assert update_openapi_snapshot(returning(STRING), snapshot, allow_breaking=False) == 1
    assert snapshot.read_text() == "{"
    assert "BREAKING: openapi.json: not valid JSON" in capsys.readouterr().out
    assert update_openapi_snapshot(returning(STRING), snapshot, allow_breaking=True) == 0
    assert snapshot.read_text() == openapi_json(returning(STRING))


SHOP_APP = """
from fastapi import FastAPI
from pydantic import BaseModel


class Settings(BaseModel):
    log_json: bool = True
    title: str = "shop"


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(title=f"{settings.title} (json logs: {settings.log_json})", version="1.0.0")

    @app.get("/things")
    async def things() -> list[str]:
        return []

    return app
"""


@pytest.fixture
def shop_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A service layout in ``tmp_path``: ``shop_app.py`` with its factory and settings."""
    (tmp_path / "shop_app.py").write_text(SHOP_APP)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_offline_document_builds_the_app_from_its_default_settings(shop_app: Path) -> None:
    document = offline_document("shop_app:create_app", "shop_app:Settings")

    assert document["info"]["title"] == "shop (json logs: False)"
    assert list(document["paths"]) == ["/things"]


def test_main_writes_the_snapshot_where_make_openapi_asks(
    shop_app: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["--app", "shop_app:create_app", "--settings", "shop_app:Settings"]

    assert main(arguments) == 0
    assert main([*arguments, "--output", "openapi.json"]) == 0

    written = json.loads((shop_app / "openapi.json").read_text())
    assert written == offline_document("shop_app:create_app", "shop_app:Settings")
    assert capsys.readouterr().out.splitlines() == [
        "wrote openapi.json",
        "openapi.json is up to date",
    ]
