#!/usr/bin/env python3
"""Build the fleet's public OpenAPI 3.1 document from the four services' own documents.

``python3 scripts/build_openapi.py`` reads each service's committed ``<service>/src/openapi.json``
(override any of them with ``--<service> PATH``) and writes ``openapi/openapi.json``, the document
the gateway serves at ``GET /api/openapi.json``. ``--check`` writes nothing: it exits 1 with a
unified diff when the committed document differs from what would be written.

What goes in (API.md, "Gateway"):

- only the paths the gateway routes, as clients call them: a service's ``/<prefix>...`` becomes
  ``/api/<prefix>...`` for the prefixes ``config/routes.json`` gives that service (the table the
  nginx template implements); everything else (``/inventory``, ``/health``, ``/ready``,
  ``/metrics``, ``/docs``, ...) is left out, and so is every component only they use;
- the components those paths use, merged: a name two services define identically is kept once, a
  name they define differently stops the build (rename the model in one of the services);
- one tag per service, ``servers: [{"url": "/"}]`` (so "try it out" calls the gateway that served
  the document), the services' bearer scheme (a JWT) plus an OAuth2 password flow at
  ``/api/auth/token`` on every operation that needs a token;
- the gateway's own answers on every operation (413 where there is a body, 429 with
  ``Retry-After``, ``RateLimit-Policy`` and ``RateLimit``, 502, 503, 504), as problem+json, each
  with its problem type in ``x-problem-types``, merged with the service's own where it has one
  (the headers it lacks, the union of the types);
- ``x-problem-types`` at the top: the union of the services' catalogues (each document's own
  top-level ``x-problem-types``, when it has one) and the gateway's own types, less the types
  no answer of the public operations lists (those of internal routes);
- examples of the main requests and answers where the services' documents have none, and the
  rules every client needs (errors, pagination, idempotency, money, limits, streaming, request ids)
  in ``info.description``.

Standard library only; when openapi-spec-validator is importable (the gateway's dev venv, as
``make openapi`` runs it) the result is validated before it is written.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import json
import sys
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_OUTPUT",
    "GATEWAY_PROBLEM_TYPES",
    "GATEWAY_RESPONSES",
    "OAUTH2_SCHEME",
    "PROBLEM_TYPES_KEY",
    "ROUTES_FILE",
    "BuildError",
    "GatewayAnswer",
    "ServiceRoutes",
    "build_document",
    "default_inputs",
    "load_routes",
    "main",
    "merge_problem_types",
    "render",
]

SERVICE_DIR = Path(__file__).resolve().parent.parent
FLEET_ROOT = SERVICE_DIR.parent
ROUTES_FILE = SERVICE_DIR / "config" / "routes.json"
DEFAULT_OUTPUT = SERVICE_DIR / "openapi" / "openapi.json"
PUBLIC_PREFIX = "/api"
TOKEN_URL = f"{PUBLIC_PREFIX}/auth/token"
OAUTH2_SCHEME = "OAuth2Password"
PROBLEM_SCHEMA = "Problem"
PROBLEM_JSON = "application/problem+json"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Component kinds whose entries are referenced with "#/components/<kind>/<name>".
_REF_PREFIX = "#/components/"


class BuildError(Exception):
    """The services' documents cannot be combined into one public document."""


@dataclass(frozen=True)
class ServiceRoutes:
    """One row of config/routes.json: a service, its upstream and the prefixes routed to it."""

    service: str
    upstream: str
    prefixes: tuple[str, ...]
    tag: str
    description: str

    def routes(self, path: str) -> bool:
        """Tell whether the gateway routes this service path: ``/<prefix>`` or ``/<prefix>/...``."""
        return any(
            path == f"/{prefix}" or path.startswith(f"/{prefix}/") for prefix in self.prefixes
        )


def load_routes(path: Path = ROUTES_FILE) -> list[ServiceRoutes]:
    """Read the routing table (config/routes.json)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return [
        ServiceRoutes(
            service=row["service"],
            upstream=row["upstream"],
            prefixes=tuple(row["prefixes"]),
            tag=row["tag"],
            description=row["description"],
        )
        for row in data["services"]
    ]


def default_inputs(routes: list[ServiceRoutes]) -> dict[str, Path]:
    """Where each service's committed document lives in the fleet's repository."""
    return {row.service: FLEET_ROOT / row.service / "src" / "openapi.json" for row in routes}


# ---- What the gateway adds -----------------------------------------------------------------------

_RETRY_AFTER = {"$ref": "#/components/headers/Retry-After"}
_RATE_LIMIT_HEADERS = {
    "Retry-After": _RETRY_AFTER,
    "RateLimit-Policy": {"$ref": "#/components/headers/RateLimit-Policy"},
    "RateLimit": {"$ref": "#/components/headers/RateLimit"},
}
# The catalogue's extension (top level: every type; on a response: the types of that status).
PROBLEM_TYPES_KEY = "x-problem-types"


@dataclass(frozen=True)
class GatewayAnswer:
    """One answer the gateway gives itself on any operation (config/nginx.conf, "Answers")."""

    problem_type: str
    description: str
    headers: Mapping[str, Mapping[str, str]]


# The gateway's own answers on every operation: status -> what the gateway means by it.
GATEWAY_RESPONSES: dict[str, GatewayAnswer] = {
    "413": GatewayAnswer(
        "urn:fleet:common:content-too-large",
        "The request body is larger than the gateway accepts (1 MiB unless the deployment sets "
        "another limit).",
        {},
    ),
    "429": GatewayAnswer(
        "urn:fleet:common:rate-limited",
        "Too many requests from this client address (every request counts; `POST "
        "/api/auth/token` and `POST /api/orders` have stricter limits of their own). Retry after "
        "the number of seconds in `Retry-After`; `RateLimit-Policy` names the limit "
        '(`"per-address"`, `"per-address-login"` or `"per-address-orders"`).',
        _RATE_LIMIT_HEADERS,
    ),
    "502": GatewayAnswer(
        "urn:fleet:common:upstream-failed",
        "The service behind this route cannot be reached.",
        {},
    ),
    "503": GatewayAnswer(
        "urn:fleet:common:service-unavailable",
        "The service behind this route is unavailable; retry after `Retry-After` seconds.",
        {"Retry-After": _RETRY_AFTER},
    ),
    "504": GatewayAnswer(
        "urn:fleet:common:upstream-timeout",
        "The service behind this route did not answer in time.",
        {},
    ),
}
_ONLY_WITH_A_BODY = {"413"}

# Every problem type the gateway answers itself (its 400 and 404 on any path too), for the
# document's catalogue; a service's entry for the same type (common-libs' text) is kept instead.
GATEWAY_PROBLEM_TYPES: list[dict[str, Any]] = [
    {
        "type": "urn:fleet:common:content-too-large",
        "status": 413,
        "title": "Content Too Large",
        "description": "The request body is larger than allowed (the gateway's body limit).",
    },
    {
        "type": "urn:fleet:common:malformed-request",
        "status": 400,
        "title": "Bad Request",
        "description": "The request cannot be read (the gateway refuses a malformed request line "
        "or header).",
    },
    {
        "type": "urn:fleet:common:not-found",
        "status": 404,
        "title": "Not Found",
        "description": "No such resource or route.",
    },
    {
        "type": "urn:fleet:common:rate-limited",
        "status": 429,
        "title": "Too Many Requests",
        "description": "A rate limit was reached (the gateway's per address, orders per user, "
        "logins per account); retry after `Retry-After` seconds (`RateLimit-Policy` and "
        "`RateLimit` say which limit).",
    },
    {
        "type": "urn:fleet:common:service-unavailable",
        "status": 503,
        "title": "Service Unavailable",
        "description": "The service or one of its dependencies is unavailable; retry after "
        "`Retry-After` seconds.",
    },
    {
        "type": "urn:fleet:common:upstream-failed",
        "status": 502,
        "title": "Bad Gateway",
        "description": "A service behind this one answered with an error or could not be reached.",
    },
    {
        "type": "urn:fleet:common:upstream-timeout",
        "status": 504,
        "title": "Gateway Timeout",
        "description": "A service behind this one did not answer in time.",
    },
]


def merge_problem_types(
    catalogues: Mapping[str, Any], gateway: list[dict[str, Any]] = GATEWAY_PROBLEM_TYPES
) -> list[dict[str, Any]]:
    """The union of the services' ``x-problem-types`` catalogues (service -> list) and the
    gateway's own, sorted by type.

    A type two services list differently stops the build (common types are defined once, in
    common-libs); a type a service lists wins over the gateway's wording, but must have the
    gateway's status. A service without a catalogue adds nothing.
    """
    merged: dict[str, dict[str, Any]] = {}
    owners: dict[str, str] = {}
    for service, catalogue in catalogues.items():
        if catalogue is None:
            continue
        if not isinstance(catalogue, list):
            raise BuildError(f"{service}: {PROBLEM_TYPES_KEY} must be a list")
        for entry in catalogue:
            if not isinstance(entry, dict) or not {"type", "status", "title"} <= set(entry):
                raise BuildError(
                    f"{service}: each {PROBLEM_TYPES_KEY} entry needs type, status and title"
                )
            name = entry["type"]
            if name in merged and merged[name] != entry:
                raise BuildError(
                    f"problem type {name!r} differs between {owners[name]} and {service}"
                )
            merged[name] = copy.deepcopy(entry)
            owners.setdefault(name, service)
    for entry in gateway:
        own = merged.get(entry["type"])
        if own is None:
            merged[entry["type"]] = copy.deepcopy(entry)
        elif own["status"] != entry["status"]:
            raise BuildError(
                f"problem type {entry['type']!r} is status {own['status']} in "
                f"{owners[entry['type']]} but {entry['status']} at the gateway"
            )
    return [merged[name] for name in sorted(merged)]


def _listed_on(paths: Mapping[str, Any], catalogue: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries of ``catalogue`` that some answer of ``paths`` lists, and the gateway's own
    (its 400 and 404 answer any path): a service's catalogue also holds the types of its
    internal routes, which clients never meet."""
    listed = {entry["type"] for entry in GATEWAY_PROBLEM_TYPES} | {
        problem_type
        for item in paths.values()
        for method, operation in item.items()
        if method in HTTP_METHODS
        for response in operation.get("responses", {}).values()
        for problem_type in response.get(PROBLEM_TYPES_KEY, [])
    }
    return [entry for entry in catalogue if entry["type"] in listed]


def _gateway_components() -> dict[str, dict[str, Any]]:
    return {
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before trying again.",
                "schema": {"type": "string", "pattern": "^[0-9]+$"},
            },
            "RateLimit-Policy": {
                "description": (
                    "The limit that applies (draft-ietf-httpapi-ratelimit-headers): "
                    '`"<policy>";q=<quota>;w=<window in seconds>`. The gateway\'s policies, per '
                    'client address: `"per-address"` (every request), `"per-address-login"` '
                    '(`POST /api/auth/token`) and `"per-address-orders"` (`POST /api/orders`); '
                    'the services\': `"orders"` (per user) and `"logins"` (per account).'
                ),
                "schema": {"type": "string"},
            },
            "RateLimit": {
                "description": (
                    'What is left of the limit: `"<policy>";r=<requests left>;t=<seconds until '
                    "it resets>`. On a `429`, `r=0` and `t` is the `Retry-After`."
                ),
                "schema": {"type": "string"},
            },
        },
        "schemas": {
            # Used only when no service defines its own Problem (they all do, identically).
            PROBLEM_SCHEMA: {
                "title": PROBLEM_SCHEMA,
                "description": "An RFC 9457 problem.",
                "type": "object",
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "detail": {"type": "string"},
                    "request_id": {"type": ["string", "null"]},
                },
                "required": ["type", "title", "status", "detail", "request_id"],
                "additionalProperties": True,
            }
        },
        "securitySchemes": {
            OAUTH2_SCHEME: {
                "type": "oauth2",
                "description": (
                    "Log in with an email and password: the OAuth2 password grant, form-encoded, "
                    f"at `{TOKEN_URL}`. The access token it returns goes in "
                    "`Authorization: Bearer <token>` (the same token as the bearer scheme)."
                ),
                "flows": {"password": {"tokenUrl": TOKEN_URL, "scopes": {}}},
            }
        },
    }


# Parameters the public contract says more precisely than a service's document:
# (method, service path, location, name) -> fields to set. A parameter made required loses the
# "null" alternative of its schema.
PARAMETER_OVERRIDES: dict[tuple[str, str, str, str], dict[str, Any]] = {
    # API.md: required (a missing key answers 400). The service declares it optional so that it can
    # answer that 400 itself instead of a validation error.
    ("post", "/orders", "header", "Idempotency-Key"): {"required": True},
}

_USER = {
    "id": "7d9f2c1e-5b1a-4c3e-9a57-2f6b8e0d4c11",
    "email": "ada@example.com",
    "full_name": "Ada Lovelace",
    "role": "customer",
    "created_at": "2026-11-26T10:00:00Z",
}
_PRODUCT = {
    "id": "3f1c9a52-8e4b-4d2a-b6c7-1a2b3c4d5e6f",
    "sku": "MUG-001",
    "name": "Enamel camping mug",
    "description": "A 350 ml enamel mug that survives campfires.",
    "category": "kitchen",
    "price": "19.99",
    "currency": "USD",
    "stock_available": 42,
    "created_at": "2026-11-20T09:00:00Z",
    "updated_at": "2026-11-25T16:30:00Z",
}
_ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 St James's Square",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "country": "GB",
}
_ORDER = {
    "id": "b2e4f6a8-1c3d-4e5f-8a9b-0c1d2e3f4a5b",
    "user_id": _USER["id"],
    "status": "confirmed",
    "items": [
        {
            "product_id": _PRODUCT["id"],
            "name": _PRODUCT["name"],
            "unit_price": "19.99",
            "quantity": 2,
            "line_total": "39.98",
        }
    ],
    "total": "39.98",
    "currency": "USD",
    "shipping_address": _ADDRESS,
    "created_at": "2026-11-26T10:05:00Z",
    "updated_at": "2026-11-26T10:05:01Z",
}
_CONVERSATION_ID = "c0ffee00-1234-4abc-8def-0123456789ab"
_USAGE = {"prompt_tokens": 412, "completion_tokens": 38, "total_tokens": 450}
_MODEL = "gpt-4o-mini"
_REPLY = "Yes: the enamel camping mug (MUG-001) is in stock at 19.99 USD."


def _example(summary: str, value: Any) -> dict[str, Any]:
    return {"summary": summary, "value": value}


def _event(event: str | None, data: Any) -> dict[str, Any]:
    """One server-sent event as the chat's document describes one (``data`` is JSON text)."""
    message = {"data": json.dumps(data, separators=(",", ":"))}
    return {"event": event, **message} if event else message


# Examples for the main requests and answers, used only where the service's document has none for
# that media type. Keyed by (method, service path); "request" or a status, then the media type.
EXAMPLES: dict[tuple[str, str], dict[str, dict[str, dict[str, Any]]]] = {
    ("post", "/users"): {
        "request": {
            "application/json": {
                "register": _example(
                    "Register a customer account",
                    {
                        "email": "ada@example.com",
                        "password": "correct horse battery staple",
                        "full_name": "Ada Lovelace",
                    },
                )
            }
        },
        "201": {"application/json": {"registered": _example("The new account", _USER)}},
    },
    ("post", "/auth/token"): {
        "request": {
            "application/x-www-form-urlencoded": {
                "login": _example(
                    "Log in (OAuth2 password grant; the username is the email)",
                    {
                        "grant_type": "password",
                        "username": "ada@example.com",
                        "password": "correct horse battery staple",
                    },
                )
            }
        },
        "200": {
            "application/json": {
                "tokens": _example(
                    "An access token (a JWT, shortened here) and a refresh token",
                    {
                        "access_token": "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0.…",
                        "refresh_token": "r1.3q2+7w-9ZlK0bq5yX8c4Tw",
                        "token_type": "bearer",
                        "expires_in": 900,
                    },
                )
            }
        },
    },
    ("get", "/products"): {
        "200": {
            "application/json": {
                "page": _example(
                    "A page of products; pass next_cursor as ?cursor= for the next one",
                    {"items": [_PRODUCT], "next_cursor": "eyJrIjoiTVVHLTAwMSJ9"},
                )
            }
        }
    },
    ("get", "/products/{product_id}"): {
        "200": {"application/json": {"product": _example("A product", _PRODUCT)}}
    },
    ("post", "/orders"): {
        "request": {
            "application/json": {
                "order": _example(
                    "Two mugs to London (send an Idempotency-Key header with it)",
                    {
                        "items": [{"product_id": _PRODUCT["id"], "quantity": 2}],
                        "shipping_address": _ADDRESS,
                    },
                )
            }
        },
        "201": {"application/json": {"confirmed": _example("The confirmed order", _ORDER)}},
    },
    ("get", "/orders/{order_id}"): {
        "200": {"application/json": {"order": _example("An order", _ORDER)}}
    },
    ("post", "/chat/generate_response"): {
        "request": {
            "application/json": {
                "turn": _example(
                    "Ask the shop's assistant (a new conversation)",
                    {"message": "Do you have a camping mug in stock?"},
                ),
                "follow_up_streamed": _example(
                    "Continue a conversation, streamed as server-sent events",
                    {
                        "message": "How much are two of them?",
                        "conversation_id": _CONVERSATION_ID,
                        "stream": True,
                    },
                ),
            }
        },
        "200": {
            "application/json": {
                "reply": _example(
                    "The assistant's reply (stream false)",
                    {
                        "conversation_id": _CONVERSATION_ID,
                        "message": {"role": "assistant", "content": _REPLY},
                        "usage": _USAGE,
                        "model": _MODEL,
                    },
                )
            },
            "text/event-stream": {
                "delta": _example(
                    'stream true: a `data` event per delta as it arrives (`data: {"delta": ...}`)',
                    _event(None, {"delta": "Two mugs "}),
                ),
                "done": _example(
                    "stream true: then one `event: done`, its data the turn's usage",
                    _event(
                        "done",
                        {"conversation_id": _CONVERSATION_ID, "usage": _USAGE, "model": _MODEL},
                    ),
                ),
            },
        },
    },
}

DESCRIPTION = """\
The shop's public HTTP API: accounts and login, the product catalog, orders and the shop's chat
assistant, all behind one gateway. Every path starts with `/api`; this document is served by the
gateway at `/api/openapi.json`, and `/api/docs` is its interactive reference.

## Authentication

Log in with `POST /api/auth/token` (form-encoded OAuth2 password grant: `username` is the email,
`password`) and send the access token as `Authorization: Bearer <access_token>`. Access tokens are
short-lived JWTs; trade the refresh token for a new pair with `POST /api/auth/refresh` (refresh
tokens rotate: each is used once). A missing, invalid or expired token answers `401` with
`WWW-Authenticate: Bearer`. Something that exists but belongs to someone else answers `404`, as if
it did not exist; an admin-only operation answers `403` to a customer.

## Errors

Every error is an RFC 9457 problem, `Content-Type: application/problem+json`:

```json
{"type": "about:blank", "title": "Conflict", "status": 409, "detail": "...", "request_id": "..."}
```

Validation errors are `422` and add `"errors": [{"loc": [...], "msg": "..."}]`. Unknown fields in a
request body are rejected with `422`.

A problem's `type` tells errors apart: `urn:fleet:<scope>:<name>`, each listed with its status and
meaning in this document's top-level `x-problem-types`, and on each answer the types it may carry
(`x-problem-types` of the response). The gateway's own answers use the shared (`common`) types:
`413` `urn:fleet:common:content-too-large`, `429` `urn:fleet:common:rate-limited`, `502`
`urn:fleet:common:upstream-failed`, `503` `urn:fleet:common:service-unavailable`, `504`
`urn:fleet:common:upstream-timeout` (and `400` malformed-request, `404` not-found on any path).

## Request ids

Every answer carries `X-Request-ID`, and every problem repeats it as `request_id`. Send your own
(1 to 128 characters of `A-Z a-z 0-9 . _ -`) to find a request in the logs; any other value is
replaced by a generated one.

## Pagination

Lists take `?limit=` (1..100, default 20) and `?cursor=`, and answer
`{"items": [...], "next_cursor": "..." | null}`. Pass `next_cursor` as `cursor` to get the next
page; `null` means there is none. Cursors are opaque.

## Money

Amounts are decimal **strings** with two places (`"19.99"`), always with a `currency` (ISO 4217,
`"USD"` by default), never floats. Timestamps are ISO 8601 in UTC, ids are UUIDs.

## Placing an order: `Idempotency-Key`

`POST /api/orders` requires an `Idempotency-Key` header (1..255 characters, one per order you mean
to place; a UUID will do); without it the answer is `400`. Sending the same key again with the same
body replays the first answer (same status, same order) and takes stock once, so a request that
timed out can safely be retried. The same key with a different body answers `422`; while the first
request with that key is still being processed, `409`. Keys are kept at least 24 hours. Prices
come from the catalog, never from the request.

## Limits

- Rate limits per client address, at the gateway: `429` problem with `Retry-After` (seconds) and
  the `RateLimit-Policy` and `RateLimit` fields naming the limit: `"per-address"` (every request),
  `"per-address-login"` (`POST /api/auth/token`) or `"per-address-orders"` (`POST /api/orders`),
  e.g. `"per-address";q=100;w=1` and `"per-address";r=0;t=1`. The chat also has a per-user token
  quota (`GET /api/chat/usage`); over it, `429`.
- Limits per user and per account, whatever the address: a user may place 10 orders per 60 s,
  and a username may fail to log in 5 times per 60 s (then every login of it, even with the right
  password, answers `429` until the window ends). Their answers carry `Retry-After` and the
  `RateLimit-Policy` and `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers:
  `"orders";q=10;w=60`, `"orders";r=<left>;t=<seconds until the window ends>`).
- Request bodies over the gateway's limit (1 MiB by default) answer `413`; so does a chat message
  too long for the model's context.
- A service that is down or too slow answers `502`, `503` (with `Retry-After`) or `504`, as
  problem+json.

## Browsers (CORS)

A web page on another origin may call the API when the deployment lists its origin
(`GATEWAY_CORS_ORIGINS`, exact origins; none by default). The gateway then answers the preflight
itself (methods `GET, POST, PATCH, DELETE`; request headers `Authorization`, `Content-Type`,
`Idempotency-Key`, `X-Request-ID`; cached 600 s) and lets the page read `X-Request-ID`,
`Retry-After`, `RateLimit`, `RateLimit-Policy` and `Location` on every answer, errors included.
Credentials mode is not needed (nor allowed): send the token in `Authorization`.

## Chat streaming

`POST /api/chat/generate_response` with `"stream": true` answers `text/event-stream`: one
`data: {"delta": "..."}` event per piece of the reply as it arrives, then one `event: done` whose
data is `{"conversation_id": ..., "usage": ..., "model": ...}` (or `event: error` with a problem).
Closing the connection stops the generation.
"""


# ---- Building ------------------------------------------------------------------------------------


def _refs(node: Any) -> Iterator[str]:
    """Every local ``$ref`` string anywhere inside ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _split_ref(ref: str) -> tuple[str, str]:
    if not ref.startswith(_REF_PREFIX):
        raise BuildError(f"only local component references are supported, found {ref!r}")
    kind, _, name = ref.removeprefix(_REF_PREFIX).partition("/")
    return kind, name.replace("~1", "/").replace("~0", "~")


def _used_components(
    roots: Any, components: Mapping[str, Any], service: str, provided: set[tuple[str, str]]
) -> set[tuple[str, str]]:
    """The service's components ``roots`` refer to, directly or through other components.

    References to what the gateway adds (``provided``) are left to the gateway, unless the service
    defines the same name itself (its ``Problem``).
    """
    seen: set[tuple[str, str]] = set()
    pending = list(_refs(roots))
    while pending:
        kind, name = _split_ref(pending.pop())
        if (kind, name) in seen:
            continue
        if name not in components.get(kind, {}):
            if (kind, name) in provided:
                continue
            raise BuildError(f"{service}: #/components/{kind}/{name} is referenced but not defined")
        seen.add((kind, name))
        pending.extend(_refs(components[kind][name]))
    return seen


def _operations(path_item: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for method in HTTP_METHODS:
        if method in path_item:
            yield method, path_item[method]


def _security_schemes_of(operation: Mapping[str, Any]) -> set[str]:
    return {name for requirement in operation.get("security", []) for name in requirement}


def _is_bearer(scheme: Mapping[str, Any]) -> bool:
    return scheme.get("type") == "http" and str(scheme.get("scheme", "")).lower() == "bearer"


def _add_examples(operation: dict[str, Any], examples: Mapping[str, Any]) -> None:
    targets: list[tuple[dict[str, Any], Mapping[str, Any]]] = []
    if "request" in examples and "requestBody" in operation:
        targets.append((operation["requestBody"].get("content", {}), examples["request"]))
    for status, by_media in examples.items():
        if status != "request" and status in operation.get("responses", {}):
            targets.append((operation["responses"][status].get("content", {}), by_media))
    for content, by_media in targets:
        for media_type, named in by_media.items():
            media = content.get(media_type)
            if media is not None and "example" not in media and "examples" not in media:
                media["examples"] = copy.deepcopy(named)


def _override_parameters(operation: dict[str, Any], method: str, path: str) -> None:
    for parameter in operation.get("parameters", []):
        key = (method, path, parameter.get("in"), parameter.get("name"))
        if key not in PARAMETER_OVERRIDES:
            continue
        parameter.update(copy.deepcopy(PARAMETER_OVERRIDES[key]))
        schema = parameter.get("schema", {})
        if parameter.get("required") and "anyOf" in schema:
            branches = [branch for branch in schema["anyOf"] if branch != {"type": "null"}]
            if len(branches) == 1:
                del schema["anyOf"]
                schema.update(branches[0])
            else:
                schema["anyOf"] = branches


def _gateway_response(answer: GatewayAnswer) -> dict[str, Any]:
    """The gateway's answer for one status, inline: a reference could not carry its types."""
    response: dict[str, Any] = {
        "description": answer.description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": f"#/components/schemas/{PROBLEM_SCHEMA}"}}},
        PROBLEM_TYPES_KEY: [answer.problem_type],
    }
    if answer.headers:
        response["headers"] = copy.deepcopy(dict(answer.headers))
    return response


def _add_gateway_responses(operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    for status, answer in GATEWAY_RESPONSES.items():
        if status in _ONLY_WITH_A_BODY and "requestBody" not in operation:
            continue
        own = responses.get(status)
        if own is None:
            responses[status] = _gateway_response(answer)
            continue
        if "$ref" in own:
            raise BuildError(f"a service's {status} response is a reference; inline it")
        own["description"] = (
            f"{own.get('description', '').rstrip()}\n\nFrom the gateway: {answer.description}"
        )
        own.setdefault("content", {}).setdefault(
            PROBLEM_JSON, {"schema": {"$ref": f"#/components/schemas/{PROBLEM_SCHEMA}"}}
        )
        for name, header in answer.headers.items():
            own.setdefault("headers", {}).setdefault(name, dict(header))
        own[PROBLEM_TYPES_KEY] = sorted({*own.get(PROBLEM_TYPES_KEY, []), answer.problem_type})


def _public_operation(
    operation: dict[str, Any],
    *,
    method: str,
    path: str,
    row: ServiceRoutes,
    bearer_schemes: set[str],
) -> dict[str, Any]:
    operation = copy.deepcopy(operation)
    operation["tags"] = [row.tag]
    if _security_schemes_of(operation) & bearer_schemes:
        operation["security"] = [*operation["security"], {OAUTH2_SCHEME: []}]
    _override_parameters(operation, method, path)
    _add_examples(operation, EXAMPLES.get((method, path), {}))
    _add_gateway_responses(operation)
    return operation


class _Combined:
    """What the services' documents add up to: public paths, components, operation ids."""

    def __init__(self, provided: set[tuple[str, str]]) -> None:
        self.paths: dict[str, Any] = {}
        self.components: dict[str, dict[str, Any]] = {}
        self._owners: dict[tuple[str, str], str] = {}
        self._operation_ids: dict[str, str] = {}
        self._provided = provided

    def add_component(self, kind: str, name: str, value: Any, service: str) -> None:
        """Add one component; identical twins are kept once, different ones are an error."""
        bucket = self.components.setdefault(kind, {})
        if name in bucket and bucket[name] != value:
            raise BuildError(
                f"#/components/{kind}/{name} differs between {self._owners[kind, name]} and "
                f"{service}: rename it in one of them (a public document has one namespace)"
            )
        bucket[name] = copy.deepcopy(value)
        self._owners.setdefault((kind, name), service)

    def add_service(self, row: ServiceRoutes, document: Mapping[str, Any]) -> None:
        """Add the routed paths of one service's document, and the components they use."""
        if not str(document.get("openapi", "")).startswith("3.1."):
            raise BuildError(f"{row.service}: expected an OpenAPI 3.1 document")
        components = document.get("components", {})
        schemes = components.get("securitySchemes", {})
        bearer_schemes = {name for name, scheme in schemes.items() if _is_bearer(scheme)}
        kept: dict[str, Any] = {}
        for path, item in sorted(document.get("paths", {}).items()):
            if not row.routes(path):
                continue
            public_item = copy.deepcopy(dict(item))
            for method, operation in _operations(item):
                own = dict(operation)
                if "security" not in own and "security" in document:
                    own["security"] = document["security"]
                public_item[method] = _public_operation(
                    own, method=method, path=path, row=row, bearer_schemes=bearer_schemes
                )
                self._claim_operation_id(own.get("operationId"), row.service)
            if PUBLIC_PREFIX + path in self.paths:
                raise BuildError(f"{PUBLIC_PREFIX + path} is routed to two services")
            kept[PUBLIC_PREFIX + path] = public_item
        used = _used_components(list(kept.values()), components, row.service, self._provided)
        for kind, name in sorted(used):
            self.add_component(kind, name, components[kind][name], row.service)
        for name in sorted(_security_schemes_of_paths(kept) - {OAUTH2_SCHEME}):
            if name not in schemes:
                raise BuildError(f"{row.service}: security scheme {name!r} is not defined")
            self.add_component("securitySchemes", name, schemes[name], row.service)
        self.paths.update(kept)

    def _claim_operation_id(self, operation_id: str | None, service: str) -> None:
        if operation_id is None:
            return
        if operation_id in self._operation_ids:
            raise BuildError(
                f"operationId {operation_id!r} is used by {self._operation_ids[operation_id]} "
                f"and {service}"
            )
        self._operation_ids[operation_id] = service

    def add_gateway(self, gateway: Mapping[str, Mapping[str, Any]]) -> None:
        """Add the gateway's own components; a bearer scheme is said to carry a JWT."""
        for kind, entries in gateway.items():
            bucket = self.components.setdefault(kind, {})
            for name, value in entries.items():
                if kind == "schemas" and name in bucket:
                    continue  # the services' own Problem (a richer definition of the same body)
                if name in bucket:
                    raise BuildError(f"#/components/{kind}/{name} is reserved for the gateway")
                bucket[name] = copy.deepcopy(value)
        for scheme in self.components["securitySchemes"].values():
            if _is_bearer(scheme):
                scheme.setdefault("bearerFormat", "JWT")


def _security_schemes_of_paths(paths: Mapping[str, Any]) -> set[str]:
    return {
        scheme
        for item in paths.values()
        for _, operation in _operations(item)
        for scheme in _security_schemes_of(operation)
    }


def _service_version() -> str:
    pyproject = tomllib.loads((SERVICE_DIR / "pyproject.toml").read_text(encoding="utf-8"))
    return str(pyproject["project"]["version"])


def build_document(
    documents: Mapping[str, Mapping[str, Any]],
    routes: list[ServiceRoutes],
    *,
    version: str | None = None,
) -> dict[str, Any]:
    """Combine the services' documents (service name -> document) into the public document."""
    gateway = _gateway_components()
    combined = _Combined({(kind, name) for kind, entries in gateway.items() for name in entries})
    for row in routes:
        if row.service not in documents:
            raise BuildError(f"no OpenAPI document for {row.service}")
        combined.add_service(row, documents[row.service])
    combined.add_gateway(gateway)
    problem_types = _listed_on(
        combined.paths,
        merge_problem_types(
            {row.service: documents[row.service].get(PROBLEM_TYPES_KEY) for row in routes}
        ),
    )
    return {
        "openapi": "3.1.0",
        PROBLEM_TYPES_KEY: problem_types,
        "info": {
            "title": "Shop API",
            "version": version if version is not None else _service_version(),
            "summary": "The fleet's public API, as clients call it through the gateway.",
            "description": DESCRIPTION,
        },
        "servers": [{"url": "/", "description": "The gateway that serves this document"}],
        "tags": [{"name": row.tag, "description": _tag_description(row)} for row in routes],
        "paths": combined.paths,
        "components": {
            kind: dict(sorted(entries.items())) for kind, entries in combined.components.items()
        },
    }


def _tag_description(row: ServiceRoutes) -> str:
    routed = ", ".join(f"`{PUBLIC_PREFIX}/{prefix}`" for prefix in row.prefixes)
    return f"{row.description} ({routed}, served by {row.service}.)"


def render(document: Mapping[str, Any]) -> str:
    """The committed form: two-space indent, sorted keys, a trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def validate(document: Mapping[str, Any]) -> None:
    """Validate with openapi-spec-validator when it is installed (the dev venv); else do nothing."""
    try:
        from openapi_spec_validator import validate as validate_spec  # noqa: PLC0415
        from openapi_spec_validator.validation.exceptions import (  # noqa: PLC0415
            OpenAPIValidationError,
        )
    except ImportError:
        return
    try:
        validate_spec(dict(document))
    except OpenAPIValidationError as error:
        raise BuildError(f"the built document is not valid OpenAPI: {error}") from error


# ---- Command line --------------------------------------------------------------------------------


def _parse_args(argv: list[str] | None, routes: list[ServiceRoutes]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for service, path in default_inputs(routes).items():
        parser.add_argument(
            f"--{service}",
            dest=service.replace("-", "_"),
            type=Path,
            default=path,
            help=f"{service}'s OpenAPI document (default: ../{service}/src/openapi.json)",
        )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="where to write the public document (default: openapi/openapi.json)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 with a diff when --output differs from the built document",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Build (or check) the public document; exit status 1 on a difference or an error."""
    routes = load_routes()
    args = _parse_args(argv, routes)
    documents: dict[str, Any] = {}
    try:
        for row in routes:
            source: Path = getattr(args, row.service.replace("-", "_"))
            try:
                documents[row.service] = json.loads(source.read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                raise BuildError(
                    f"cannot read {row.service}'s document {source}: {error}"
                ) from error
        document = build_document(documents, routes)
        validate(document)
    except BuildError as error:
        print(f"build_openapi: {error}", file=sys.stderr)
        return 1
    text = render(document)
    output: Path = args.output
    if args.check:
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current == text:
            return 0
        sys.stdout.writelines(
            difflib.unified_diff(
                current.splitlines(keepends=True),
                text.splitlines(keepends=True),
                fromfile=f"{output} (committed)",
                tofile=f"{output} (built)",
            )
        )
        print(
            f"build_openapi: {output} is out of date; run `make openapi` and commit it",
            file=sys.stderr,
        )
        return 1
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    print(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
