"""Text a service cannot keep: U+0000 (PostgreSQL's text refuses it) and unpaired surrogates
(UTF-8 cannot encode them; JSON lets a client send ``"\\ud800"``).

:class:`StorableTextMiddleware` (installed by ``create_service_app``) answers ``422`` with the
fleet's validation problem when such a character is in any text input of a request: the path,
a query parameter (name or value), a header, a JSON body (strings and keys, at any depth) or a
form field (URL-encoded or multipart; files are not text). It looks at every request the same
way, so no route or field can forget it, and it costs a byte search per input on the common
path: a body is parsed again only when its bytes hold something that could decode to such a
character (a ``\\u0000`` or ``\\udXXX`` escape, a ``%00``, a NUL byte, an encoded surrogate).

:data:`WHITESPACE` is for the patterns a service publishes: what "blank" means, named character
by character so that a client's validator reads the pattern as the service does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common_libs.problems import UNSTORABLE_TEXT_ERROR, ProblemResponse, validation_problem

__all__ = [
    "WHITESPACE",
    "StorableTextMiddleware",
    "has_unstorable_text",
    "is_surrogate_encode_error",
]

WHITESPACE = (
    r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
"""The inside of a regex character class of every character some engine counts as ``\\s``: use
``[{WHITESPACE}]`` or ``[^{WHITESPACE}]`` in a published pattern, never ``\\s``. The engines
differ: pydantic's (Rust) counts U+0085 and not U+FEFF, JSON Schema's (ECMAScript, what clients
and fuzzers validate with) U+FEFF and not U+0085, Python's also U+001C to U+001F; a pattern with
``\\s`` admits, for one of them, a name the other refuses."""

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Bytes that may decode to U+0000 or a surrogate: a JSON escape (valid surrogate pairs match
# too, and pass once parsed), a percent-encoded or raw NUL, UTF-8-style encoded surrogates
# (Python's json reads them with surrogatepass).
_SUSPECT_JSON = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])|\x00|\xed[\xa0-\xbf]")
_SUSPECT_FORM = re.compile(rb"%00|\x00|\xed[\xa0-\xbf]")
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
_Loc = list[str | int]


def has_unstorable_text(text: str) -> bool:
    """Whether ``text`` holds U+0000 or an unpaired surrogate."""
    return _UNSTORABLE.search(text) is not None


def is_surrogate_encode_error(error: BaseException) -> bool:
    """A ``UnicodeEncodeError`` on an unpaired surrogate (text that came in as ``"\\ud800"``):
    the input's fault, unlike an encoding to ASCII that a program got wrong."""
    if not isinstance(error, UnicodeEncodeError):
        return False
    rejected = error.object[error.start : error.end]
    return bool(rejected) and all("\ud800" <= char <= "\udfff" for char in rejected)


def _json_locations(value: Any, loc: _Loc) -> Iterator[_Loc]:
    """Where in a parsed JSON document a string (or a key) holds unstorable text."""
    if isinstance(value, str):
        if has_unstorable_text(value):
            yield loc
    elif isinstance(value, dict):
        for key, item in value.items():
            if has_unstorable_text(key):
                yield loc  # the key itself is not echoed
            else:
                yield from _json_locations(item, [*loc, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_locations(item, [*loc, index])


def _pairs_locations(pairs: Iterator[tuple[str, Any]], where: str) -> Iterator[_Loc]:
    for name, value in pairs:
        if has_unstorable_text(name):
            yield [where]
        elif isinstance(value, str) and has_unstorable_text(value):
            yield [where, name]


def _media_type(value: bytes) -> str:
    return value.split(b";", 1)[0].strip().lower().decode("latin-1")


class StorableTextMiddleware:
    """Answer ``422`` (the validation problem, each place in ``errors``) to a request with
    U+0000 or an unpaired surrogate in its text (pure ASGI; see the module)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        locations: list[_Loc] = []
        if has_unstorable_text(scope["path"]):
            locations.append(["path"])
        query: bytes = scope["query_string"]
        if b"%00" in query or b"\x00" in query:
            text = query.decode("latin-1")
            pairs = parse_qsl(text, keep_blank_values=True, errors="replace")
            locations.extend(_pairs_locations(iter(pairs), "query"))
        media_type = None
        has_body = False
        for name, value in scope["headers"]:
            if b"\x00" in value:
                locations.append(["header", name.decode("latin-1")])
            elif name == b"content-type":
                media_type = _media_type(value)
            elif (name == b"content-length" and value != b"0") or name == b"transfer-encoding":
                has_body = True
        examined = has_body and (
            media_type is None
            or media_type in _FORM_TYPES
            or media_type == "application/json"
            or media_type.endswith("+json")
        )
        if examined:
            messages = await _read_body(receive)
            body = b"".join(message.get("body", b"") for message in messages)
            receive = _replay(messages, receive)
            if media_type in _FORM_TYPES:
                if _SUSPECT_FORM.search(body):
                    locations.extend(await _form_locations(scope, receive))
                    receive = _replay(messages, receive)
            elif _SUSPECT_JSON.search(body):
                locations.extend(_body_json_locations(body))
        if locations:
            await _refuse(locations)(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _read_body(receive: Receive) -> list[Message]:
    """The request's messages up to its last body chunk (or the client's disconnect)."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that hands out ``messages`` again, then what ``receive`` gives."""
    pending = iter(messages)

    async def replay() -> Message:
        return next(pending, None) or await receive()

    return replay


def _body_json_locations(body: bytes) -> list[_Loc]:
    try:
        document = json.loads(body)
    except ValueError:
        return []  # not JSON: the app answers that
    return list(_json_locations(document, ["body"]))


async def _form_locations(scope: Scope, receive: Receive) -> list[_Loc]:
    """Parse the form as the app would (Starlette's parser); the text fields that hold
    unstorable text. A file's content is not text."""
    try:
        async with Request(scope, receive).form() as form:
            fields = [(name, value) for name, value in form.multi_items()]
    except Exception:  # an unreadable form is the app's to answer
        return []
    text_fields = [(name, value) for name, value in fields if not isinstance(value, UploadFile)]
    return list(_pairs_locations(iter(text_fields), "body"))


def _refuse(locations: list[_Loc]) -> ProblemResponse:
    unique = list({json.dumps(loc): loc for loc in locations}.values())
    return validation_problem([{"loc": loc, **UNSTORABLE_TEXT_ERROR} for loc in unique])
