"""Every text input of an app refuses what PostgreSQL cannot store: a check that walks the app's
OpenAPI document and puts U+0000 (and, in JSON, an unpaired surrogate) into each parameter and
each top-level field of each request body, expecting the validation problem (``422``), never a
``500``. Bound by every service through :data:`common_libs.testing.app_checks.APP_CONVENTIONS`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

__all__ = ["assert_unstorable_text_refused", "unstorable_text_is_refused_everywhere"]

_UNSTORABLE_TYPE = "string_unstorable_character"
_PATH_PARAMETER = re.compile(r"\{([^}]+)\}")
# Raw JSON, so that the escapes go out as a client would write them.
_JSON_VALUES = ('"a\\u0000b"', '"a\\ud800b"')


def assert_unstorable_text_refused(response: httpx.Response, *, what: str = "") -> None:
    """``response`` is the validation problem naming unstorable text (and echoes none)."""
    assert response.status_code == 422, f"{what}: {response.status_code} {response.text[:300]}"
    assert response.headers["content-type"] == "application/problem+json", what
    types = {error.get("type") for error in response.json().get("errors", [])}
    assert _UNSTORABLE_TYPE in types, f"{what}: {response.text[:300]}"
    assert "\\u0000" not in response.text, f"{what}: the input is echoed"


def _resolve(schema: Mapping[str, Any], document: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        return _resolve(document["components"]["schemas"][ref.rsplit("/", 1)[1]], document)
    return schema


def _properties(schema: Mapping[str, Any], document: Mapping[str, Any]) -> list[str]:
    """The top-level fields a body schema names (through ``$ref`` and ``allOf``/``anyOf``/
    ``oneOf``)."""
    schema = _resolve(schema, document)
    names = list(schema.get("properties", {}))
    for key in ("allOf", "anyOf", "oneOf"):
        for part in schema.get(key, []):
            names += [name for name in _properties(part, document) if name not in names]
    return names


def _requests(document: Mapping[str, Any]) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(what, method, url, httpx request options) for each text input of each operation."""
    for template, item in document.get("paths", {}).items():
        # FastAPI's path items hold operations only (no path-level parameters).
        for method, operation in item.items():
            path = _PATH_PARAMETER.sub("x", template)
            label = f"{method.upper()} {template}"
            for name in _PATH_PARAMETER.findall(template):
                url = template.replace("{" + name + "}", "a%00b")
                yield f"{label} path {name}", method, _PATH_PARAMETER.sub("x", url), {}
            for parameter in operation.get("parameters", []):
                name, where = parameter["name"], parameter["in"]
                if where == "query":
                    yield f"{label} query {name}", method, path, {"params": {name: "a\x00b"}}
                elif where == "header" and name.lower() != "authorization":
                    headers = [(name.encode(), b"a\x00b")]
                    yield f"{label} header {name}", method, path, {"headers": headers}
            content = operation.get("requestBody", {}).get("content", {})
            for media_type, entry in content.items():
                bodies = _BODIES.get(media_type, _no_bodies)
                for field in _properties(entry.get("schema", {}), document):
                    for options in bodies(field):
                        yield f"{label} body {field}", method, path, options


def _json_bodies(field: str) -> list[dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    return [
        {"content": f'{{"{field}": {value}}}'.encode(), "headers": headers}
        for value in _JSON_VALUES
    ]


def _form_bodies(field: str) -> list[dict[str, Any]]:
    return [{"data": {field: "a\x00b"}}]


def _multipart_bodies(field: str) -> list[dict[str, Any]]:
    # A part without a file name is a text field of the form.
    return [{"files": {field: (None, "a\x00b")}}]


def _no_bodies(field: str) -> list[dict[str, Any]]:
    return []


_BODIES: dict[str, Callable[[str], list[dict[str, Any]]]] = {
    "application/json": _json_bodies,
    "application/x-www-form-urlencoded": _form_bodies,
    "multipart/form-data": _multipart_bodies,
}


async def unstorable_text_is_refused_everywhere(client: httpx.AsyncClient, service: str) -> None:
    """U+0000 in any parameter or top-level body field of any operation of the app's OpenAPI
    document (an unpaired surrogate too, in JSON) answers the validation problem."""
    document = (await client.get("/openapi.json")).json()
    requests = list(_requests(document))

    assert any(" body " in what for what, *_ in requests), "no body field was found to try"
    for what, method, url, options in requests:
        response = await client.request(method.upper(), url, **options)
        assert_unstorable_text_refused(response, what=what)
