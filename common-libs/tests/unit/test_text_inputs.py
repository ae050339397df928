"""Text PostgreSQL cannot store (U+0000) or UTF-8 cannot encode (unpaired surrogates) is refused
with the validation problem, wherever it is in a request; everything else passes untouched."""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Form, Header, UploadFile
from pydantic import BaseModel, StringConstraints, TypeAdapter, ValidationError

from common_libs.problems import problem_responses
from common_libs.service_app import create_service_app
from common_libs.testing.app_checks import asgi_client
from common_libs.text_inputs import WHITESPACE, has_unstorable_text, is_surrogate_encode_error


class Settings(BaseModel):
    log_level: str = "INFO"
    log_json: bool = False


class Address(BaseModel):
    name: str
    lines: list[str] = []


class Order(BaseModel):
    address: Address
    notes: dict[str, str] = {}


@asynccontextmanager
async def no_lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield


def make_app() -> FastAPI:
    app = create_service_app(
        name="texts",
        version="1.0.0",
        summary="Texts.",
        lifespan=no_lifespan,
        settings=Settings(),
        ready_checks={},
    )

    @app.post("/orders")
    async def place(order: Order) -> Order:
        return order

    @app.get("/items/{name}")
    async def item(name: str, q: str = "") -> dict[str, str]:
        return {"name": name, "q": q}

    @app.post("/token", responses=problem_responses(400))
    async def token(
        username: Annotated[str, Form()], password: Annotated[str, Form()]
    ) -> dict[str, str]:
        return {"username": username}

    @app.post("/upload")
    async def upload(title: Annotated[str, Form()], file: UploadFile) -> dict[str, int]:
        return {"size": len(await file.read())}

    @app.get("/keyed")
    async def keyed(key: Annotated[str, Header(alias="Idempotency-Key")]) -> str:
        return key

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(make_app()) as http:
        yield http


def raw_json(document: str) -> dict[str, Any]:
    """A JSON body written by hand, so that escapes go out exactly as written."""
    return {"content": document.encode(), "headers": {"Content-Type": "application/json"}}


def assert_refused(response: httpx.Response, *locations: list[Any]) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["type"], body["title"]) == (
        "urn:fleet:common:validation-failed",
        "Unprocessable Content",
    )
    assert [error["loc"] for error in body["errors"]] == list(locations)
    assert {error["type"] for error in body["errors"]} == {"string_unstorable_character"}
    assert "\x00" not in response.text
    assert "\\u0000" not in response.text


@pytest.mark.parametrize("escape", ["\\u0000", "\\ud800", "\\uDFFF", "a\\udc00b"])
async def test_json_strings_at_any_depth_are_refused(
    client: httpx.AsyncClient, escape: str
) -> None:
    document = f'{{"address": {{"name": "Ann", "lines": ["ok", "{escape}"]}}}}'

    response = await client.post("/orders", **raw_json(document))

    assert_refused(response, ["body", "address", "lines", 1])


async def test_other_json_values_are_no_text(client: httpx.AsyncClient) -> None:
    document = '{"address": {"name": "\\u0000"}, "count": 3, "gift": null}'

    assert_refused(await client.post("/orders", **raw_json(document)), ["body", "address", "name"])


async def test_a_json_key_is_refused_without_being_echoed(client: httpx.AsyncClient) -> None:
    document = '{"address": {"name": "Ann"}, "notes": {"k\\u0000": "v"}}'

    assert_refused(await client.post("/orders", **raw_json(document)), ["body", "notes"])


async def test_encoded_surrogate_bytes_in_json_are_refused(client: httpx.AsyncClient) -> None:
    # Python's json reads the UTF-8-style bytes of a surrogate as that surrogate.
    content = b'{"address": {"name": "A\xed\xa0\x80"}}'
    headers = {"Content-Type": "application/json"}

    assert_refused(
        await client.post("/orders", content=content, headers=headers), ["body", "address", "name"]
    )


@pytest.mark.parametrize(
    "name", ["\\ud83d\\ude00", "\\\\u0000", "caf\\u00e9"], ids=["pair", "escaped-backslash", "e"]
)
async def test_storable_json_escapes_pass(client: httpx.AsyncClient, name: str) -> None:
    response = await client.post("/orders", **raw_json(f'{{"address": {{"name": "{name}"}}}}'))

    assert response.status_code == 200
    assert response.json()["address"]["name"] == json.loads(f'"{name}"')


async def test_path_and_query_are_refused(client: httpx.AsyncClient) -> None:
    assert_refused(await client.get("/items/a%00b"), ["path"])
    assert_refused(await client.get("/items/a", params={"q": "x\x00"}), ["query", "q"])
    assert_refused(await client.get("/items/a?%00=1"), ["query"])


async def test_form_fields_are_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/token", data={"username": "a\x00@b.c", "password": "pw"})
    accepted = await client.post("/token", data={"username": "a@b.c", "password": "pw"})

    assert_refused(response, ["body", "username"])
    assert accepted.json() == {"username": "a@b.c"}


async def test_an_unreadable_form_is_the_apps_to_answer(client: httpx.AsyncClient) -> None:
    headers = {"Content-Type": "multipart/form-data; boundary=x"}

    response = await client.post("/token", content=b"\x00 no parts at all", headers=headers)

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_multipart_text_field_is_refused_and_a_file_is_not_text(
    client: httpx.AsyncClient,
) -> None:
    file = {"file": ("blob.bin", b"\x00\x01binary", "application/octet-stream")}

    refused = await client.post("/upload", data={"title": "t\x00"}, files=file)
    accepted = await client.post("/upload", data={"title": "t"}, files=file)

    assert_refused(refused, ["body", "title"])
    assert accepted.json() == {"size": 8}


async def test_a_header_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get("/keyed", headers=[(b"Idempotency-Key", b"k\x00y")])

    assert_refused(response, ["header", "idempotency-key"])


async def test_plain_requests_pass_and_unreadable_json_is_the_apps_to_answer(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/items/a", params={"q": "b"})).json() == {"name": "a", "q": "b"}
    unreadable = await client.post("/orders", **raw_json('{"address": {"name": "\\u0000'))
    assert unreadable.status_code == 422
    assert unreadable.json()["errors"][0]["type"] == "json_invalid"


async def test_a_streamed_body_is_read_whole(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"address": {"name": "\\u00'
        yield b'00"}}'

    response = await client.post(
        "/orders", content=chunks(), headers={"Content-Type": "application/json"}
    )

    assert_refused(response, ["body", "address", "name"])


async def test_the_refusal_writes_no_traceback(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        response = await client.post("/token", data={"username": "\x00", "password": "pw"})

    assert response.status_code == 422
    assert all(record.exc_info is None for record in caplog.records)


def test_unstorable_text_and_surrogate_encode_errors_are_recognised() -> None:
    assert has_unstorable_text("a\x00")
    assert has_unstorable_text("\udfff")
    assert not has_unstorable_text("caf\u00e9 \U0001f600")
    with pytest.raises(UnicodeEncodeError) as surrogate:
        "a\ud800".encode()
    with pytest.raises(UnicodeEncodeError) as ascii_bug:
        "caf\u00e9".encode("ascii")
    assert is_surrogate_encode_error(surrogate.value)
    assert not is_surrogate_encode_error(ascii_bug.value)
    assert not is_surrogate_encode_error(ValueError())


def _every_character() -> str:
    return "".join(chr(code) for code in range(0x110000) if not 0xD800 <= code <= 0xDFFF)


def _pydantic_whitespace(text: str) -> set[str]:
    """The characters of ``text`` that pydantic's regex engine counts as ``\\s``."""
    no_space = TypeAdapter(Annotated[str, StringConstraints(pattern=r"^\S*$")])
    found: set[str] = set()
    for start in range(0, len(text), 4096):
        chunk = text[start : start + 4096]
        try:
            no_space.validate_python(chunk)
        except ValidationError:
            for char in chunk:
                try:
                    no_space.validate_python(char)
                except ValidationError:
                    found.add(char)
    return found


def test_the_whitespace_class_holds_what_every_engine_counts_as_whitespace() -> None:
    text = _every_character()
    python = set(re.findall(r"\s", text))
    # ECMAScript's \s (JSON Schema's patterns): WhiteSpace and LineTerminator.
    ecmascript = {char for char in text if unicodedata.category(char) == "Zs"}
    ecmascript |= set("\t\v\f\ufeff\n\r\u2028\u2029")
    pydantic = _pydantic_whitespace(text)
    assert "\x85" in pydantic - ecmascript
    assert "\ufeff" in ecmascript - pydantic

    assert set(re.findall(f"[{WHITESPACE}]", text)) == python | ecmascript | pydantic


def test_a_pattern_built_with_the_whitespace_class_reads_alike_in_python_and_pydantic() -> None:
    visible = f"^[{WHITESPACE}]*[^{WHITESPACE}\\x00][^\\x00]*$"
    model = TypeAdapter(Annotated[str, StringConstraints(pattern=visible)])
    for text in (" \x85", "\ufeff", "\x1c\u3000", "\t\n\r", " a", "\x85b", "\u200b"):
        try:
            model.validate_python(text)
            admitted = True
        except ValidationError:
            admitted = False
        assert admitted == bool(re.match(visible, text)), repr(text)
        assert admitted == any(not char.isspace() and char != "\ufeff" for char in text)
