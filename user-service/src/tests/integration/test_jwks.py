"""GET /auth/jwks publishes public keys only; previous keys stay published and trusted."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt
from common_libs.testing.app_checks import asgi_client
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.ext.asyncio import AsyncConnection

from app.main import create_app
from app.security.signing_keys import public_jwk, public_key_pem
from tests.conftest import make_settings
from tests.integration.conftest import bind_to_connection
from tests.support.users import bearer, new_customer, register


async def test_jwks_publishes_the_public_key_with_kid_alg_and_use(
    client: httpx.AsyncClient, signing_key: Ed25519PrivateKey
) -> None:
    response = await client.get("/auth/jwks")

    assert response.status_code == 200
    assert response.json() == {"keys": [public_jwk(signing_key.public_key())]}
    (key,) = response.json()["keys"]
    assert {key["alg"], key["use"], key["kty"], key["crv"]} == {"EdDSA", "sig", "OKP", "Ed25519"}
    assert "d" not in key


async def test_access_tokens_verify_with_the_published_key(client: httpx.AsyncClient) -> None:
    _, tokens = await new_customer(client)
    jwks = (await client.get("/auth/jwks")).json()

    key = jwt.PyJWKSet.from_dict(jwks)[jwt.get_unverified_header(tokens["access_token"])["kid"]]
    claims = jwt.decode(tokens["access_token"], key, algorithms=["EdDSA"], audience="fleet")

    assert claims["iss"] == "fleet-user-service"


async def test_after_rotation_tokens_of_the_previous_key_stay_valid(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    service_settings: dict[str, object],
    signing_key: Ed25519PrivateKey,
) -> None:
    user = await register(client)
    now = int(time.time())
    old_kid = public_jwk(signing_key.public_key())["kid"]
    old_token = jwt.encode(
        {
            "sub": user["id"],
            "role": "customer",
            "iss": "fleet-user-service",
            "aud": "fleet",
            "iat": now,
            "exp": now + 300,
            "jti": str(uuid.uuid4()),
        },
        signing_key,
        algorithm="EdDSA",
        headers={"kid": old_kid},
    )
    rotated = create_app(
        make_settings(
            **{
                **service_settings,
                "signing_key_pem": None,
                "previous_public_keys_pem": public_key_pem(signing_key.public_key()).decode(),
                "previous_keys_retired_at": datetime.now(UTC) - timedelta(seconds=60),
            }
        )
    )

    async with rotated.router.lifespan_context(rotated):
        bind_to_connection(rotated, connection)
        async with asgi_client(rotated) as http:
            kids = [key["kid"] for key in (await http.get("/auth/jwks")).json()["keys"]]
            me = await http.get("/users/me", headers=bearer({"access_token": old_token}))

    assert kids == [rotated.state.keys.kid, old_kid]
    assert rotated.state.keys.kid != old_kid
    assert me.status_code == 200
