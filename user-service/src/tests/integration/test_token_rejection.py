"""Forged, expired or misdirected access tokens answer 401 with RFC 6750's
``error="invalid_token"`` challenge (an expired one saying that it expired: refresh it), both from
user-service itself and from common-libs' verifier in another process that knows only
user-service's JWKS URL."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from common_libs.testing import ServerProcess, free_port
from common_libs.testing.problem_checks import check_problem_type_answered
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from tests.integration.conftest import PASSWORD, SERVICE_ROOT, RunningService, unique_email
from tests.support.users import bearer, new_customer

TokenFactory = Callable[[dict[str, Any]], str]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def verifier_url(
    running_service: RunningService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The base URL of a separate process verifying tokens with common-libs over the JWKS URL."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "tests.integration.verifier_app:create_app"]
    argv += ["--factory", "--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    base_url = f"http://127.0.0.1:{port}"
    env = {"VERIFIER_JWKS_URL": running_service.base_url + "/auth/jwks"}
    log_path: Path = tmp_path_factory.mktemp("verifier") / "verifier.log"
    with ServerProcess(
        argv, env=env, cwd=SERVICE_ROOT, log_path=log_path, ready_url=base_url + "/health"
    ):
        yield base_url


@pytest.fixture(scope="module")
def customer(running_service: RunningService) -> dict[str, Any]:
    """A registered customer of the running service, with a genuine token."""
    email = unique_email("forgery")
    with httpx.Client(base_url=running_service.base_url) as http:
        user = http.post(
            "/users", json={"email": email, "password": PASSWORD, "full_name": "Victim"}
        ).json()
        tokens = http.post("/auth/token", data={"username": email, "password": PASSWORD}).json()
    return {"id": user["id"], "access_token": tokens["access_token"]}


def _claims(subject: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": subject,
        "role": "customer",
        "iss": "fleet-user-service",
        "aud": "fleet",
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    }
    return {**claims, **overrides}


def _kid(genuine: str) -> str:
    return str(jwt.get_unverified_header(genuine)["kid"])


def _alg_none(key: Ed25519PrivateKey, genuine: str, subject: str) -> str:
    header = {"alg": "none", "typ": "JWT", "kid": _kid(genuine)}
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(_claims(subject)).encode())}."


def _wrong_key(key: Ed25519PrivateKey, genuine: str, subject: str) -> str:
    return jwt.encode(
        _claims(subject),
        Ed25519PrivateKey.generate(),
        algorithm="EdDSA",
        headers={"kid": _kid(genuine)},
    )


def _signed(key: Ed25519PrivateKey, genuine: str, claims: dict[str, Any]) -> str:
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": _kid(genuine)})


def _expired(key: Ed25519PrivateKey, genuine: str, subject: str) -> str:
    now = int(time.time())
    return _signed(key, genuine, _claims(subject, iat=now - 1000, exp=now - 100))


def _wrong_issuer(key: Ed25519PrivateKey, genuine: str, subject: str) -> str:
    return _signed(key, genuine, _claims(subject, iss="someone-else"))


def _wrong_audience(key: Ed25519PrivateKey, genuine: str, subject: str) -> str:
    return _signed(key, genuine, _claims(subject, aud="another-fleet"))


def _tampered_payload(key: Ed25519PrivateKey, genuine: str, subject: str) -> str:
    header, payload, signature = genuine.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "admin"
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


def _hs256_with_public_key(key: Ed25519PrivateKey, genuine: str, subject: str) -> str:
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": _kid(genuine)}).encode())
    payload = _b64(json.dumps(_claims(subject)).encode())
    secret = key.public_key().public_bytes_raw()
    mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(mac)}"


FORGERIES = {
    "alg-none": _alg_none,
    "wrong-key": _wrong_key,
    "expired": _expired,
    "wrong-issuer": _wrong_issuer,
    "wrong-audience": _wrong_audience,
    "tampered-payload": _tampered_payload,
    "hs256-with-public-key": _hs256_with_public_key,
}


def _targets(running_service: RunningService, verifier_url: str) -> dict[str, str]:
    return {
        "user-service": running_service.base_url + "/users/me",
        "remote-verifier": verifier_url + "/whoami",
    }


@pytest.mark.parametrize("target", ["user-service", "remote-verifier"])
def test_genuine_token_is_accepted(
    running_service: RunningService, verifier_url: str, customer: dict[str, Any], target: str
) -> None:
    url = _targets(running_service, verifier_url)[target]

    response = httpx.get(url, headers={"Authorization": f"Bearer {customer['access_token']}"})

    assert response.status_code == 200
    assert customer["id"] in response.text


@pytest.mark.parametrize("target", ["user-service", "remote-verifier"])
@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_forged_token_is_refused_with_401(
    running_service: RunningService,
    verifier_url: str,
    customer: dict[str, Any],
    signing_key: Ed25519PrivateKey,
    offline_app: FastAPI,
    forgery: str,
    target: str,
) -> None:
    token = FORGERIES[forgery](signing_key, customer["access_token"], customer["id"])
    url = _targets(running_service, verifier_url)[target]

    response = httpx.get(url, headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
    problem = response.json()
    challenge = response.headers["www-authenticate"]
    if forgery == "expired":
        assert problem["type"] == "urn:fleet:common:token-expired"
        assert (
            challenge
            == 'Bearer error="invalid_token", error_description="The access token expired"'
        )
    else:
        assert problem["type"] == "urn:fleet:common:invalid-token"
        assert challenge == f'Bearer error="invalid_token", error_description="{problem["detail"]}"'
        assert "expired" not in challenge
    if target == "user-service":
        check_problem_type_answered(response, offline_app.openapi())


async def test_an_expired_token_answers_401_token_expired_saying_so(
    client: httpx.AsyncClient, signing_key: Ed25519PrivateKey
) -> None:
    user, tokens = await new_customer(client)
    expired = _expired(signing_key, tokens["access_token"], user["id"])

    response = await client.get("/users/me", headers=bearer({"access_token": expired}))

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == (
        'Bearer error="invalid_token", error_description="The access token expired"'
    )
    assert response.json()["type"] == "urn:fleet:common:token-expired"
    assert response.json()["title"] == "Token Expired"
