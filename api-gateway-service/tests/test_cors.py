"""CORS at the gateway: GATEWAY_CORS_ORIGINS, the preflight nginx answers, and the headers of
every answer to an allowed origin (docs/API.md, "Browsers (CORS)"); nothing when it is empty."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import render_config
from conftest import GatewayFactory
from support.assertions import assert_problem, assert_security_headers
from support.servers import SERVICE_DIR, Gateway, Stub

ALLOWED = "https://app.example"
OTHER_ALLOWED = "http://127.0.0.1:5173"
DISALLOWED = "https://evil.example"
EXPOSED = (
    "X-Request-ID, Retry-After, RateLimit, RateLimit-Policy, Location, WWW-Authenticate,"
    " Deprecation, Sunset, Link"
)
CORS_HEADERS = (
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-allow-credentials",
    "access-control-max-age",
    "access-control-expose-headers",
)


@pytest.fixture(scope="module")
def cors_gateway(make_gateway: GatewayFactory, upstreams: dict[str, str]) -> Gateway:
    """Two allowed origins; a low general limit, per X-Forwarded-For address (127.0.0.1 trusted)."""
    return make_gateway(
        upstreams=upstreams,
        name="gateway-cors",
        overrides={
            "GATEWAY_CORS_ORIGINS": f"{ALLOWED},{OTHER_ALLOWED}",
            "GATEWAY_TRUSTED_PROXIES": "127.0.0.1",
            "GATEWAY_RATE_LIMIT": "1r/m",
            "GATEWAY_RATE_BURST": "2",
        },
    )


@pytest.fixture
def cors_client(cors_gateway: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=cors_gateway.url, timeout=10.0) as http:
        yield http


def _fresh_address() -> dict[str, str]:
    """A client address of its own (full buckets), through the trusted X-Forwarded-For."""
    number = uuid.uuid4().int
    return {"X-Forwarded-For": f"10.{number % 250}.{number // 250 % 250}.{number // 62500 % 250}"}


def _preflight(origin: str, method: str = "POST", **headers: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization,content-type,idempotency-key,x-request-id",
        **_fresh_address(),
        **headers,
    }


def _cors_headers(response: httpx.Response) -> dict[str, list[str]]:
    return {
        name: response.headers.get_list(name)
        for name in CORS_HEADERS
        if response.headers.get_list(name)
    }


@pytest.mark.parametrize("origin", [ALLOWED, OTHER_ALLOWED])
@pytest.mark.parametrize("path", ["/api/orders", "/api/products/42", "/api/auth/token"])
def test_a_preflight_from_an_allowed_origin_is_answered_by_the_gateway(
    cors_client: httpx.Client, stubs: dict[str, Stub], origin: str, path: str
) -> None:
    request_id = f"preflight-{uuid.uuid4().hex}"

    response = cors_client.options(path, headers=_preflight(origin, **{"X-Request-ID": request_id}))

    assert response.status_code == 204
    assert response.content == b""
    assert _cors_headers(response) == {
        "access-control-allow-origin": [origin],
        "access-control-allow-methods": ["GET, POST, PATCH, DELETE"],
        "access-control-allow-headers": [
            "Authorization, Content-Type, Idempotency-Key, X-Request-ID"
        ],
        "access-control-max-age": ["600"],
    }
    assert response.headers.get_list("vary") == ["Origin"]
    assert_security_headers(response.headers.multi_items())
    assert all(request_id not in stub.request_ids() for stub in stubs.values())


def test_preflights_are_not_rate_limited(cors_client: httpx.Client) -> None:
    address = _fresh_address()
    statuses = {
        cors_client.options("/api/orders", headers=_preflight(ALLOWED, **address)).status_code
        for _ in range(5)
    }

    assert statuses == {204}


@pytest.mark.parametrize(
    "origin",
    [
        DISALLOWED,
        "https://app.example.evil.example",
        "https://app.example:8443",
        "http://app.example",
        "https://APP.example",
        f"{ALLOWED},{OTHER_ALLOWED}",
        f"{DISALLOWED},{ALLOWED}",
        f"{ALLOWED} {ALLOWED}",
        "null",
        "*",
    ],
)
def test_a_preflight_from_any_other_origin_gets_no_allow_origin(
    cors_client: httpx.Client, stubs: dict[str, Stub], origin: str
) -> None:
    request_id = f"preflight-other-{uuid.uuid4().hex}"

    response = cors_client.options(
        "/api/orders", headers=_preflight(origin, **{"X-Request-ID": request_id})
    )

    # Passed on as before CORS existed: the service answers (the stub says 200 and sends its own
    # Access-Control-Allow-Origin: *, which the gateway hides); the browser refuses.
    assert response.status_code == 200
    assert request_id in stubs["order"].request_ids()
    assert _cors_headers(response) == {}
    assert response.headers.get_list("vary") == ["Origin"]


def test_a_preflight_outside_the_api_is_not_answered(cors_client: httpx.Client) -> None:
    response = cors_client.options("/healthz", headers=_preflight(ALLOWED))

    assert response.status_code == 405
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "access-control-allow-methods" not in response.headers


def test_an_answer_of_a_service_to_an_allowed_origin_carries_the_cors_headers(
    cors_client: httpx.Client,
) -> None:
    response = cors_client.post(
        "/api/orders",
        json={"items": []},
        headers={"Origin": ALLOWED, "Authorization": "Bearer token", **_fresh_address()},
    )

    assert response.status_code == 200
    assert response.json()["service"] == "order"
    assert _cors_headers(response) == {
        "access-control-allow-origin": [ALLOWED],
        "access-control-expose-headers": [EXPOSED],
    }
    assert response.headers.get_list("vary") == ["Origin"]
    # The Origin itself is not among the headers the gateway forwards.
    assert "origin" not in dict(response.json()["headers"])


def test_a_problem_of_the_gateway_to_an_allowed_origin_carries_the_cors_headers(
    cors_client: httpx.Client,
) -> None:
    response = cors_client.get("/api/nothing-here", headers={"Origin": OTHER_ALLOWED})

    assert_problem(
        response.status_code,
        response.headers.multi_items(),
        response.content,
        expected_status=404,
        title="Not Found",
    )
    assert _cors_headers(response) == {
        "access-control-allow-origin": [OTHER_ALLOWED],
        "access-control-expose-headers": [EXPOSED],
    }


def test_a_429_of_the_gateway_to_an_allowed_origin_carries_the_cors_headers(
    cors_client: httpx.Client,
) -> None:
    headers = {"Origin": ALLOWED, **_fresh_address()}
    statuses = [cors_client.get("/api/products", headers=headers).status_code for _ in range(3)]

    refused = cors_client.get("/api/products", headers=headers)

    assert statuses == [200] * 3
    assert_problem(
        refused.status_code,
        refused.headers.multi_items(),
        refused.content,
        expected_status=429,
        title="Too Many Requests",
    )
    assert _cors_headers(refused) == {
        "access-control-allow-origin": [ALLOWED],
        "access-control-expose-headers": [EXPOSED],
    }
    assert refused.headers["ratelimit-policy"] == '"per-address";q=1;w=60'
    assert refused.headers["ratelimit"] == '"per-address";r=0;t=63'
    assert refused.headers["retry-after"] == "63"


def test_an_answer_to_another_origin_carries_no_cors_header(cors_client: httpx.Client) -> None:
    response = cors_client.get("/api/products", headers={"Origin": DISALLOWED, **_fresh_address()})

    assert response.status_code == 200
    assert _cors_headers(response) == {}
    assert response.headers.get_list("vary") == ["Origin"]


def test_without_the_setting_nothing_changes(client: httpx.Client, stubs: dict[str, Stub]) -> None:
    request_id = f"preflight-off-{uuid.uuid4().hex}"
    preflight = client.options(
        "/api/orders", headers=_preflight(ALLOWED, **{"X-Request-ID": request_id})
    )
    actual = client.get("/api/products", headers={"Origin": ALLOWED})
    problem = client.get("/api/nothing-here", headers={"Origin": ALLOWED})

    assert preflight.status_code == 200
    assert request_id in stubs["order"].request_ids()
    for response in (preflight, actual, problem):
        assert _cors_headers(response) == {}
        assert "vary" not in response.headers


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("*", "'*' is a wildcard, which is not allowed"),
        ("https://*.example.com", "'https://*.example.com' is a wildcard, which is not allowed"),
        ("https://app.example/", "'https://app.example/' is not an origin"),
        ("https://app.example/path", "'https://app.example/path' is not an origin"),
        ("app.example", "'app.example' is not an origin"),
        ("ftp://app.example", "'ftp://app.example' is not an origin"),
        ("https://App.example", "'https://App.example' is not an origin"),
        ("https://app.example, https://b.example", "' https://b.example' is not an origin"),
        ("https://app.example,", "'' is not an origin"),
        ("https://user@app.example", "'https://user@app.example' is not an origin"),
        ("https://app.example:443", "'https://app.example:443' is not an origin: its port must be"),
        ("http://app.example:80", "'http://app.example:80' is not an origin: its port must be"),
        (
            "http://app.example:70000",
            "'http://app.example:70000' is not an origin: its port must be",
        ),
        ('https://a.example"', "is not an origin"),
    ],
)
def test_a_bad_origin_setting_fails_the_render(value: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(render_config.RenderError, match="GATEWAY_CORS_ORIGINS") as raised:
        render_config.render_templates(
            SERVICE_DIR / "config" / "templates", tmp_path, {"GATEWAY_CORS_ORIGINS": value}
        )

    assert message in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_good_origin_settings_render() -> None:
    value = "https://app.example,http://127.0.0.1:5173,http://[::1]:8000,https://shop-1.example.co"

    assert render_config.check_cors_origins(value) == value.split(",")
    assert render_config.check_cors_origins("") == []
