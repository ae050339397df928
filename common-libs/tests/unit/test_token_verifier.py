"""TokenVerifier: pinned asymmetric algorithms, known keys, required claims, issuer and audience."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from support.tokens import (
    AUDIENCE,
    ISSUER,
    SigningKey,
    claims,
    ed25519_key,
    forge,
    jwks,
    mint,
)

from common_libs.auth import Principal, StaticKeySource, TokenVerifier
from common_libs.errors import InvalidToken, TokenExpired
from common_libs.problem_types import INVALID_TOKEN, TOKEN_EXPIRED

EXPIRED_CHALLENGE = 'Bearer error="invalid_token", error_description="The access token expired"'


@pytest.fixture
def verifier(ed25519_signing_key: SigningKey, rsa_signing_key: SigningKey) -> TokenVerifier:
    keys = StaticKeySource(jwks(ed25519_signing_key, rsa_signing_key))
    return TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE)


async def rejection(verifier: TokenVerifier, token: str) -> str:
    """Verify a token that must be refused; return the refusal's detail (an expired token's
    401 says so in its type and challenge, any other's names what is wrong)."""
    with pytest.raises(InvalidToken) as refused:
        await verifier.verify(token)
    error = refused.value
    expired = isinstance(error, TokenExpired)
    assert error.status == 401
    assert error.type == (TOKEN_EXPIRED if expired else INVALID_TOKEN).type
    assert error.headers["WWW-Authenticate"] == (
        EXPIRED_CHALLENGE
        if expired
        else f'Bearer error="invalid_token", error_description="{error.detail}"'
    )
    return error.detail


async def test_eddsa_token_proves_its_principal(
    verifier: TokenVerifier, ed25519_signing_key: SigningKey
) -> None:
    payload = claims(sub="user-1", role="admin", jti="t-1", exp=2_000_000_000)

    principal = await verifier.verify(mint(ed25519_signing_key, payload))

    assert principal == Principal(
        subject="user-1",
        role="admin",
        token_id="t-1",
        expires_at=datetime.fromtimestamp(2_000_000_000, tz=UTC),
    )
    assert principal.is_admin
    assert not principal.is_service


async def test_rs256_token_is_accepted(
    verifier: TokenVerifier, rsa_signing_key: SigningKey
) -> None:
    principal = await verifier.verify(mint(rsa_signing_key, claims(role="service")))

    assert principal.role == "service"
    assert principal.is_service
    assert not principal.is_admin


async def test_malformed_token_is_refused(verifier: TokenVerifier) -> None:
    assert await rejection(verifier, "not-a-jwt") == "The access token is malformed."


async def test_unsigned_alg_none_token_is_refused(
    verifier: TokenVerifier, ed25519_signing_key: SigningKey
) -> None:
    token = forge(
        {"alg": "none", "typ": "JWT", "kid": ed25519_signing_key.kid},
        claims(role="admin"),
        hmac_secret=None,
    )

    assert await rejection(verifier, token) == "The access token's algorithm is not accepted."


async def test_hs256_signed_with_the_public_key_is_refused(
    verifier: TokenVerifier, rsa_signing_key: SigningKey
) -> None:
    public_pem = rsa_signing_key.private_key.public_key().public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    )
    token = forge(
        {"alg": "HS256", "typ": "JWT", "kid": rsa_signing_key.kid},
        claims(role="admin"),
        hmac_secret=public_pem,
    )

    assert await rejection(verifier, token) == "The access token's algorithm is not accepted."


async def test_token_without_kid_is_refused(
    verifier: TokenVerifier, ed25519_signing_key: SigningKey
) -> None:
    token = mint(ed25519_signing_key, kid=None)

    assert await rejection(verifier, token) == "The access token has no key id."


async def test_token_with_unknown_kid_is_refused(verifier: TokenVerifier) -> None:
    token = mint(ed25519_key("never-published"))

    assert await rejection(verifier, token) == "The access token was not signed by a known key."


async def test_key_of_another_algorithm_than_the_header_is_refused(
    verifier: TokenVerifier, ed25519_signing_key: SigningKey, rsa_signing_key: SigningKey
) -> None:
    # Signed with the RSA key but naming the Ed25519 key's kid: the key cannot verify RS256.
    token = mint(rsa_signing_key, kid=ed25519_signing_key.kid)

    assert await rejection(verifier, token) == "The access token was not signed by a known key."


async def test_token_signed_by_a_wrong_key_is_refused(
    verifier: TokenVerifier, ed25519_signing_key: SigningKey
) -> None:
    impostor = ed25519_key(ed25519_signing_key.kid)

    assert await rejection(verifier, mint(impostor)) == "The access token is invalid."


async def test_tampered_payload_is_refused(
    verifier: TokenVerifier, ed25519_signing_key: SigningKey
) -> None:
    header, _, signature = mint(ed25519_signing_key, claims(role="customer")).split(".")
    _, payload, _ = forge({}, claims(role="admin"), hmac_secret=None).split(".")

    assert await rejection(verifier, f"{header}.{payload}.{signature}") == (
        "The access token is invalid."
    )


async def test_expired_token_is_refused(
    verifier: TokenVerifier, ed25519_signing_key: SigningKey
) -> None:
    now = int(time.time())
    token = mint(ed25519_signing_key, claims(iat=now - 600, exp=now - 60))

    with pytest.raises(TokenExpired) as refused:
        await verifier.verify(token)

    assert refused.value.type == "urn:fleet:common:token-expired"
    assert refused.value.detail == "The access token expired."
    assert refused.value.headers == {"WWW-Authenticate": EXPIRED_CHALLENGE}


async def test_leeway_admits_a_token_that_expired_just_now(ed25519_signing_key: SigningKey) -> None:
    verifier = TokenVerifier(
        StaticKeySource(jwks(ed25519_signing_key)), issuer=ISSUER, audience=AUDIENCE, leeway=60
    )
    now = int(time.time())

    principal = await verifier.verify(mint(ed25519_signing_key, claims(exp=now - 5)))

    assert principal.expires_at == datetime.fromtimestamp(now - 5, tz=UTC)


@pytest.mark.parametrize(
    "bad_claims",
    [
        pytest.param({"iss": "https://evil.test"}, id="wrong-issuer"),
        pytest.param({"aud": "another-fleet"}, id="wrong-audience"),
        pytest.param({"iat": int(time.time()) + 3600}, id="issued-in-the-future"),
        *(
            pytest.param({claim: None}, id=f"missing-{claim}")
            for claim in ("exp", "iat", "iss", "aud", "sub", "jti")
        ),
    ],
)
async def test_token_with_bad_registered_claims_is_refused(
    verifier: TokenVerifier, ed25519_signing_key: SigningKey, bad_claims: dict[str, object]
) -> None:
    token = mint(ed25519_signing_key, claims(**bad_claims))

    assert await rejection(verifier, token) == "The access token is invalid."


@pytest.mark.parametrize(
    "bad_role",
    [pytest.param("root", id="unknown-role"), pytest.param(None, id="missing-role")],
)
async def test_token_without_a_known_role_is_refused(
    verifier: TokenVerifier, ed25519_signing_key: SigningKey, bad_role: str | None
) -> None:
    token = mint(ed25519_signing_key, claims(role=bad_role))

    assert await rejection(verifier, token) == "The access token's claims are invalid."


async def test_algorithms_can_be_pinned_to_one(
    ed25519_signing_key: SigningKey, rsa_signing_key: SigningKey
) -> None:
    keys = StaticKeySource(jwks(ed25519_signing_key, rsa_signing_key))
    verifier = TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE, algorithms=["EdDSA"])

    assert await rejection(verifier, mint(rsa_signing_key)) == (
        "The access token's algorithm is not accepted."
    )


async def test_static_source_skips_keys_without_kid_or_of_unsupported_type(
    ed25519_signing_key: SigningKey,
) -> None:
    nameless = {k: v for k, v in ed25519_key("x").public_jwk().items() if k != "kid"}
    unsupported = {"kty": "XYZ", "kid": "weird", "crv": "none"}
    source = StaticKeySource({"keys": [nameless, unsupported, ed25519_signing_key.public_jwk()]})

    key = await source.get_key(ed25519_signing_key.kid)

    assert isinstance(key, jwt.PyJWK)
    assert key.algorithm_name == "EdDSA"
    assert await source.get_key("weird") is None


async def test_static_source_skips_entries_that_are_not_objects(
    ed25519_signing_key: SigningKey,
) -> None:
    source = StaticKeySource({"keys": [1, "ed-1", None, ed25519_signing_key.public_jwk()]})

    assert await source.get_key(ed25519_signing_key.kid) is not None


async def test_static_source_without_keys_knows_none() -> None:
    assert await StaticKeySource({}).get_key("any") is None


async def test_a_subject_in_the_deny_list_is_refused_after_verification(
    ed25519_signing_key: SigningKey,
) -> None:
    deny_list = {"deleted-user"}
    verifier = TokenVerifier(
        StaticKeySource(jwks(ed25519_signing_key)),
        issuer=ISSUER,
        audience=AUDIENCE,
        deny_list=deny_list,
    )

    detail = await rejection(verifier, mint(ed25519_signing_key, claims(sub="deleted-user")))
    other = await verifier.verify(mint(ed25519_signing_key, claims(sub="someone-else")))
    # A bad token of a denied subject says what is wrong with the token: checked first.
    expired = await rejection(
        verifier, mint(ed25519_signing_key, claims(sub="deleted-user", exp=1_000_000_000))
    )

    assert detail == "The account no longer exists."
    assert other.subject == "someone-else"
    assert expired == "The access token expired."
    assert verifier.deny_list is deny_list


async def test_a_verifier_made_without_a_deny_list_has_none(verifier: TokenVerifier) -> None:
    assert verifier.deny_list is None


class _Keys:
    """A key source whose keys the test changes (a rotation at the issuer)."""

    def __init__(self, *keys: SigningKey) -> None:
        self.source = StaticKeySource(jwks(*keys))

    async def get_key(self, kid: str) -> jwt.PyJWK | None:
        return await self.source.get_key(kid)


async def test_a_remembered_token_is_still_refused_once_expired_withdrawn_or_denied(
    ed25519_signing_key: SigningKey, rsa_signing_key: SigningKey
) -> None:
    """The same token again skips the signature, not the checks whose answer can change."""
    now = time.time()
    clock = [now]
    keys = _Keys(ed25519_signing_key, rsa_signing_key)
    deny_list: set[str] = set()
    verifier = TokenVerifier(
        keys, issuer=ISSUER, audience=AUDIENCE, deny_list=deny_list, clock=lambda: clock[0]
    )
    expiring = mint(ed25519_signing_key, claims(sub="a", exp=int(now) + 60))
    withdrawn = mint(rsa_signing_key, claims(sub="b"))
    denied = mint(ed25519_signing_key, claims(sub="c"))
    for token in (expiring, withdrawn, denied):
        await verifier.verify(token)
        await verifier.verify(token)  # remembered

    clock[0] = now + 61
    keys.source = StaticKeySource(jwks(ed25519_signing_key))  # the RSA key withdrawn
    deny_list.add("c")

    assert await rejection(verifier, expiring) == "The access token expired."
    assert await rejection(verifier, withdrawn) == "The access token was not signed by a known key."
    assert await rejection(verifier, denied) == "The account no longer exists."


async def test_a_rotated_key_verifies_a_remembered_token_again(
    ed25519_signing_key: SigningKey,
) -> None:
    """The issuer's key set fetched again (new key objects): the token is checked from scratch
    and passes with the same key material."""
    keys = _Keys(ed25519_signing_key)
    verifier = TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE, cache_size=1)
    token = mint(ed25519_signing_key, claims(sub="a", jti="t-a"))
    other = mint(ed25519_signing_key, claims(sub="b"))
    first = await verifier.verify(token)
    keys.source = StaticKeySource(jwks(ed25519_signing_key))
    await verifier.verify(other)  # with room for one, this one pushes the first out

    assert await verifier.verify(token) == first
    assert first.token_id == "t-a"
