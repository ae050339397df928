"""Stand-ins for a service's neighbours when it runs alone (``make run``, see
:mod:`common_libs.testing.standalone`): built from the pacts its consumer tests publish, so that
they cannot drift from what the service was tested against.

:func:`pact_stand_in` plays the provider of one Pact v4 file (as :mod:`common_libs.testing.pact`
writes it). A request matches an interaction when the method and the path do (a UUID segment
matches any UUID) and it has the pact's query parameters with their values (or as the pact's
rule for them allows; more are fine). Among those, the ones whose body holds every field the
pact's body names (equal, or as its matching rule allows) win, the one with the most fields
(path segments, query parameters) equal to the example first, then a 2xx, then the pact's
order; when no body fits, the first 2xx answers. Two rules come from the fleet's pages
(:mod:`common_libs.pagination`): an example page answers any larger ``limit``, and a
``next_cursor`` no interaction is asked with is served as null, the end of the list.

The answer is the interaction's: status, headers, body. What the request sent where the
example answer repeats the example request (a reservation's id and items, an id in the path)
comes back as sent; what only the provider makes stays the example. A request that matches no
interaction gets a ``404`` problem naming it and listing what the pact knows: it left the
contract. ``GET /_stand-in`` tells the same, with the example ids.

:func:`token_stand_in` hands out access tokens signed like user-service's (``GET /token``) and
their keys (``GET /auth/jwks``); its key is made per process, so tokens do not survive a
restart. :func:`set_llm_rules` gives the LLM test server the rules a service's table names.

uvicorn runs the apps through the factories that read the environment
(``pact_stand_in_from_environment``, ``token_stand_in_from_environment``).
"""

from __future__ import annotations

import json
import os
import re
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast, get_args
from urllib.parse import parse_qs, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from common_libs.auth import Role
from common_libs.problem_types import NOT_FOUND
from common_libs.problems import problem_response, validation_problem
from common_libs.testing.llm import LlmControl, Rule, ToolCall
from common_libs.testing.tokens import TestTokenIssuer

__all__ = [
    "INFO_PATH",
    "PACT_VARIABLE",
    "TOKEN_TTL_SECONDS",
    "PactStandIn",
    "load_llm_rules",
    "pact_stand_in",
    "pact_stand_in_from_environment",
    "set_llm_rules",
    "token_stand_in",
    "token_stand_in_from_environment",
]

PACT_VARIABLE = "STAND_IN_PACT"
"""The pact file :func:`pact_stand_in_from_environment` serves."""
INFO_PATH = "/_stand-in"
"""What a pact stand-in knows (its interactions, the ids of its examples); 200 once it runs."""
TOKEN_TTL_SECONDS = 900
"""The lifetime of a token stand-in's token (user-service's default)."""

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_BEARER = "bearer"  # the OAuth2 token type
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_INDEX = re.compile(r"\[\d+\]")
# The fleet's pages (common_libs.pagination): `limit` is a page's size, not a question.
_PAGE_SIZE = "limit"
_CURSOR = "cursor"
_NEXT_CURSOR = "next_cursor"
_ABSENT = object()


def _is_uuid(value: object) -> bool:
    return isinstance(value, str) and bool(_UUID.match(value))


def _json_type(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return repr(value) if value is None else "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _matcher_holds(matcher: Mapping[str, Any], value: Any, example: Any) -> bool:
    """One Pact matcher: the kinds the fleet's pacts use; any other asks for the example."""
    kind = matcher.get("match")
    if kind == "regex":
        return isinstance(value, str) and re.search(matcher["regex"], value) is not None
    if kind == "type":
        return _json_type(value) == _json_type(example)
    if kind == "integer":  # a number, or a query parameter's digits
        return isinstance(value, int | str) and re.fullmatch(r"-?\d+", str(value)) is not None
    if kind in {"decimal", "number"}:
        return _json_type(value) == "number"
    return bool(value == example)


def _rule_holds(rule: Mapping[str, Any] | None, value: Any, example: Any) -> bool:
    if not rule:
        return False
    results = [_matcher_holds(matcher, value, example) for matcher in rule.get("matchers", [])]
    return bool(results) and (any(results) if rule.get("combine") == "OR" else all(results))


def _rule_at(rules: Mapping[str, Any], path: str) -> Mapping[str, Any] | None:
    """The matching rule for a body path, written for it or for every element (``[*]``)."""
    found = rules.get(path) or rules.get(_INDEX.sub("[*]", path))
    return found if isinstance(found, Mapping) else None


@dataclass
class _Fit:
    """How a request's body fits an interaction's: the fields equal to the example (a better
    fit), and the fields the request sent differently (repeated in the answer)."""

    equal: int = 0
    sent: dict[str, Any] = field(default_factory=dict)


def _fit(example: Any, actual: Any, path: str, rules: Mapping[str, Any], fit: _Fit) -> bool:
    """Whether ``actual`` carries every field of ``example`` (equal, or as its rule allows)."""
    if isinstance(example, dict):
        return isinstance(actual, dict) and all(
            key in actual and _fit(value, actual[key], f"{path}.{key}", rules, fit)
            for key, value in example.items()
        )
    if isinstance(example, list):
        if isinstance(actual, list) and len(actual) == len(example):
            pairs = list(zip(example, actual, strict=True))
        elif example and _rule_holds(_rule_at(rules, path), actual, example):
            pairs = [(example[0], item) for item in actual]  # a list "like" its first element
        else:
            return False
        return all(
            _fit(item, got, f"{path}[{index}]", rules, fit)
            for index, (item, got) in enumerate(pairs)
        )
    if _json_type(actual) == _json_type(example) and actual == example:
        fit.equal += 1
        return True
    if _rule_holds(_rule_at(rules, path), actual, example):
        fit.sent[path] = actual
        return True
    return False


def _same_places(example: Any, actual: Any, path: str = "$") -> Iterator[tuple[str, Any, Any]]:
    """The example's fields and what the request holds in the same places (same JSON type)."""
    if isinstance(example, dict) and isinstance(actual, dict):
        for key, value in example.items():
            if key in actual:
                yield from _same_places(value, actual[key], f"{path}.{key}")
    elif isinstance(example, list) and isinstance(actual, list):
        for index, (item, got) in enumerate(zip(example, actual, strict=False)):
            yield from _same_places(item, got, f"{path}[{index}]")
    elif _json_type(example) == _json_type(actual):
        yield path, example, actual


def _repeat(answer: Any, by_place: Mapping[str, tuple[Any, Any]], ids: Mapping[str, str]) -> Any:
    """``answer`` with what the request sent where the example answer repeated the example."""

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, dict):
            return {key: walk(item, f"{path}.{key}") for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item, f"{path}[{index}]") for index, item in enumerate(value)]
        if path in by_place and by_place[path][0] == value:
            return by_place[path][1]
        if isinstance(value, str) and value in ids:
            return ids[value]
        return value

    return walk(answer, "$")


def _parse_body(content: Any, content_type: str) -> Any:
    """A body as JSON, a form (one value a field) or text; ``_ABSENT`` when empty."""
    if content is None or content in ("", b""):
        return _ABSENT
    if not isinstance(content, str | bytes):
        return content  # a pact's JSON, parsed with the file
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    if "x-www-form-urlencoded" in content_type:
        return {name: values[0] for name, values in parse_qs(text).items()}
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass(frozen=True)
class _Interaction:
    index: int
    description: str
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    rules: dict[str, Any]
    status: int
    headers: dict[str, str]
    content_type: str
    answer: Any

    @classmethod
    def read(cls, index: int, raw: Mapping[str, Any]) -> _Interaction:
        request, response = raw["request"], raw["response"]
        request_body = request.get("body") or {}
        response_body = response.get("body") or {}
        headers = {
            name: ", ".join(values) for name, values in (response.get("headers") or {}).items()
        }
        content_type = next(
            (value for name, value in headers.items() if name.lower() == "content-type"),
            response_body.get("contentType", "application/json"),
        )
        return cls(
            index=index,
            description=str(raw.get("description", "")),
            method=str(request["method"]).upper(),
            path=str(request["path"]),
            query={name: list(values) for name, values in (request.get("query") or {}).items()},
            body=_parse_body(request_body.get("content"), request_body.get("contentType", "")),
            rules=request.get("matchingRules") or {},
            status=int(response.get("status", 200)),
            headers=headers,
            content_type=content_type,
            answer=response_body.get("content", _ABSENT),
        )

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    def summary(self) -> str:
        query = f"?{urlencode(self.query, doseq=True)}" if self.query else ""
        return f"{self.method} {self.path}{query} -> {self.status} ({self.description})"

    def path_fit(self, path: str) -> tuple[int, dict[str, str]] | None:
        """Segments equal to the example's, and the example's ids the request replaced."""
        expected, actual = self.path.split("/"), path.split("/")
        if len(expected) != len(actual) or not all(
            mine == got or (_is_uuid(mine) and _is_uuid(got))
            for mine, got in zip(expected, actual, strict=True)
        ):
            return None
        ids = {mine: got for mine, got in zip(expected, actual, strict=True) if mine != got}
        return len(expected) - len(ids), ids

    def query_fit(self, query: Mapping[str, list[str]]) -> int | None:
        """How many of the pact's query parameters the request has as they are; None: misses one."""
        equal = 0
        rules = self.rules.get("query") or {}
        for name, values in self.query.items():
            got = query.get(name)
            if got is None:
                return None
            if got == values:
                equal += 1
            elif not (
                all(_rule_holds(rules.get(name), value, values[0]) for value in got)
                or (name == _PAGE_SIZE and _at_least(got, values))
            ):
                return None
        return equal

    def body_fit(self, body: Any) -> _Fit | None:
        fit = _Fit()
        if self.body is _ABSENT:
            return fit
        if body is _ABSENT:
            return None
        return fit if _fit(self.body, body, "$", self.rules.get("body") or {}, fit) else None


def _at_least(got: list[str], values: list[str]) -> bool:
    """A page of the example's size is a valid page of any larger size."""
    try:
        return int(got[0]) >= int(values[0])
    except ValueError:
        return False


@dataclass(frozen=True)
class _Choice:
    interaction: _Interaction
    equal: int
    ids: dict[str, str]
    body: _Fit | None

    def rank(self) -> tuple[int, bool, int]:
        return (self.equal, self.interaction.is_success, -self.interaction.index)


class PactStandIn:
    """The ASGI app playing the provider of one pact (see the module's documentation)."""

    def __init__(self, pact: Mapping[str, Any], *, name: str = "pact") -> None:
        self.name = name
        self.consumer = str((pact.get("consumer") or {}).get("name", "consumer"))
        self.provider = str((pact.get("provider") or {}).get("name", "provider"))
        self.interactions = [
            _Interaction.read(index, raw) for index, raw in enumerate(pact.get("interactions", []))
        ]
        # A next_cursor no interaction is asked with is the end of the stand-in's list.
        self._cursors = {
            value for item in self.interactions for value in item.query.get(_CURSOR, [])
        }

    def known_ids(self) -> dict[str, str]:
        """The ids of the pact's example requests, each with where it first appears."""
        known: dict[str, str] = {}
        for item in self.interactions:
            places = [("path", segment) for segment in item.path.split("/")]
            if item.body is not _ABSENT:
                places += [(path, value) for path, value, _ in _same_places(item.body, item.body)]
            for place, value in places:
                if _is_uuid(value) and value not in known:
                    known[value] = f"{item.method} {item.path} {place} ({item.description})"
        return known

    def describe(self) -> list[str]:
        """What the stand-in serves, a line each (the runner prints them)."""
        lines = [f"stand-in for {self.provider} from {self.consumer}'s pact {self.name}:"]
        lines += [f"  {item.summary()}" for item in self.interactions]
        lines += [f"  example id {value}: {where}" for value, where in self.known_ids().items()]
        return lines

    def choose(
        self, method: str, path: str, query: Mapping[str, list[str]], body: Any
    ) -> _Choice | None:
        """The interaction that answers the request, or None when none matches."""
        choices: list[_Choice] = []
        for item in self.interactions:
            if item.method != method:
                continue
            path_fit = item.path_fit(path)
            query_equal = item.query_fit(query)
            if path_fit is None or query_equal is None:
                continue
            body_fit = item.body_fit(body)
            equal = path_fit[0] + query_equal + (body_fit.equal if body_fit else 0)
            choices.append(_Choice(item, equal, path_fit[1], body_fit))
        fitting = [choice for choice in choices if choice.body is not None]
        if fitting:
            return max(fitting, key=_Choice.rank)
        return next((choice for choice in choices if choice.interaction.is_success), None)

    def answer(self, choice: _Choice, body: Any) -> Response:
        """The chosen interaction's answer, repeating what the request sent in its places."""
        item = choice.interaction
        if item.answer is _ABSENT:
            return Response(status_code=item.status, headers=item.headers)
        by_place: dict[str, tuple[Any, Any]] = {}
        ids = dict(choice.ids)
        if item.body is not _ABSENT and body is not _ABSENT:
            for place, example, sent in _same_places(item.body, body):
                if example != sent:
                    by_place[place] = (example, sent)
                    if _is_uuid(example) and _is_uuid(sent):
                        ids[example] = sent
        content = _repeat(item.answer, by_place, ids)
        if isinstance(content, dict) and content.get(_NEXT_CURSOR) not in {None, *self._cursors}:
            content[_NEXT_CURSOR] = None
        payload = content.encode() if isinstance(content, str) else json.dumps(content).encode()
        headers = {
            name: value for name, value in item.headers.items() if name.lower() != "content-type"
        }
        return Response(payload, item.status, headers=headers, media_type=item.content_type)

    def left_the_contract(self, method: str, path: str, query: str) -> Response:
        """The ``404`` problem of a request that no interaction matches."""
        target = f"{path}?{query}" if query else path
        return problem_response(
            status=NOT_FOUND.status,
            title=NOT_FOUND.title,
            type_=NOT_FOUND.type,
            detail=(
                f"{method} {target} is not in {self.consumer}'s pact with {self.provider} "
                f"({self.name}): the request left the contract."
            ),
            extra={"interactions": [item.summary() for item in self.interactions]},
        )

    def info(self) -> dict[str, Any]:
        """What ``GET /_stand-in`` answers."""
        return {
            "pact": self.name,
            "consumer": self.consumer,
            "provider": self.provider,
            "interactions": [item.summary() for item in self.interactions],
            "example_ids": self.known_ids(),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, on_start=self.describe)
            return
        request = Request(scope, receive)
        if request.method == "GET" and request.url.path == INFO_PATH:
            await JSONResponse(self.info())(scope, receive, send)
            return
        raw = await request.body()
        body = _parse_body(raw, request.headers.get("content-type", "application/json"))
        query = parse_qs(request.url.query, keep_blank_values=True)
        choice = self.choose(request.method, request.url.path, query, body)
        if choice is None:
            response = self.left_the_contract(request.method, request.url.path, request.url.query)
        else:
            response = self.answer(choice, body)
        await response(scope, receive, send)


async def _lifespan(receive: Receive, send: Send, *, on_start: Callable[[], list[str]]) -> None:
    """Print what ``on_start`` tells once started (uvicorn's log); nothing to stop."""
    await receive()  # lifespan.startup
    for line in on_start():
        print(line, file=sys.stderr, flush=True)
    await send({"type": "lifespan.startup.complete"})
    await receive()  # lifespan.shutdown
    await send({"type": "lifespan.shutdown.complete"})


def pact_stand_in(pact_path: Path | str) -> PactStandIn:
    """The provider of the Pact v4 file at ``pact_path``, as an ASGI app."""
    path = Path(pact_path)
    return PactStandIn(json.loads(path.read_text(encoding="utf-8")), name=path.name)


def pact_stand_in_from_environment() -> PactStandIn:
    """:func:`pact_stand_in` of the file ``STAND_IN_PACT`` names (``uvicorn --factory``)."""
    return pact_stand_in(os.environ[PACT_VARIABLE])


def _token_problem(field_name: str, message: str, kind: str) -> Response:
    return validation_problem([{"loc": ["query", field_name], "msg": message, "type": kind}])


def token_stand_in(issuer: TestTokenIssuer, *, ttl_seconds: int = TOKEN_TTL_SECONDS) -> Starlette:
    """``GET /auth/jwks`` and ``GET /token?role=customer|admin|service&sub=...`` as an ASGI app.

    ``sub`` is optional (a new UUID each time): a UUID for a customer or an admin, a client id
    for a service.
    """
    roles: tuple[str, ...] = get_args(Role)

    async def jwks(request: Request) -> Response:
        return JSONResponse(issuer.jwks(), headers={"Cache-Control": "no-store"})

    async def token(request: Request) -> Response:
        role = request.query_params.get("role", "")
        if role not in roles:
            return _token_problem("role", f"role must be one of {', '.join(roles)}", "enum")
        subject = request.query_params.get("sub") or str(uuid.uuid4())
        pattern = _CLIENT_ID if role == "service" else _UUID
        if not pattern.match(subject):
            kind = "a client id" if role == "service" else "a UUID"
            return _token_problem("sub", f"sub must be {kind}", "string_pattern_mismatch")
        signed = issuer.token(subject=subject, role=cast(Role, role), ttl_seconds=ttl_seconds)
        answer = dict(access_token=signed, token_type=_BEARER, expires_in=ttl_seconds)
        return JSONResponse(answer, headers={"Cache-Control": "no-store"})

    async def not_found(request: Request, exc: Exception) -> Response:
        return problem_response(
            status=NOT_FOUND.status,
            title=NOT_FOUND.title,
            type_=NOT_FOUND.type,
            detail="The token stand-in serves GET /token?role=... and GET /auth/jwks.",
        )

    return Starlette(
        routes=[Route("/auth/jwks", jwks), Route("/token", token)],
        exception_handlers={404: not_found, 405: not_found},
    )


def token_stand_in_from_environment() -> Starlette:
    """:func:`token_stand_in` with a new key (``uvicorn --factory``)."""
    return token_stand_in(TestTokenIssuer(kid=f"stand-in-{uuid.uuid4().hex[:8]}"))


def load_llm_rules(rules_file: Path | str) -> list[Rule]:
    """The LLM test server's rules in a JSON file: a list of :class:`Rule` fields each."""
    raw = json.loads(Path(rules_file).read_text(encoding="utf-8"))
    if not isinstance(raw, list):
        raise ValueError(f"{rules_file}: a list of rules is expected")
    rules = []
    for fields in raw:
        calls = fields.get("calls")
        if calls is not None:
            fields = {**fields, "calls": [ToolCall(**call) for call in calls]}
        rules.append(Rule(**fields))
    return rules


def set_llm_rules(llm_url: str, rules_file: Path | str) -> int:
    """Give the LLM test server at ``llm_url`` (without ``/v1``) the rules of ``rules_file``;
    returns how many."""
    rules = load_llm_rules(rules_file)
    LlmControl(llm_url).set_rules(*rules)
    return len(rules)
