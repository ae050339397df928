"""TestTokenIssuer mints tokens that the real verifier accepts, and only those."""

from __future__ import annotations

import pytest

from common_libs.auth import TokenVerifier
from common_libs.errors import Unauthorized
from common_libs.testing import TestTokenIssuer


def _verifier(issuer: TestTokenIssuer) -> TokenVerifier:
    return TokenVerifier(issuer.key_source(), issuer=issuer.issuer, audience=issuer.audience)


async def test_minted_token_verifies_with_subject_and_role() -> None:
    issuer = TestTokenIssuer()

    principal = await _verifier(issuer).verify(issuer.token(subject="user-1", role="admin"))

    assert (principal.subject, principal.role) == ("user-1", "admin")


async def test_token_from_another_issuer_instance_is_refused() -> None:
    stranger = TestTokenIssuer()

    with pytest.raises(Unauthorized):
        await _verifier(TestTokenIssuer()).verify(stranger.token())


async def test_claim_override_of_none_removes_the_claim() -> None:
    issuer = TestTokenIssuer()

    with pytest.raises(Unauthorized):
        await _verifier(issuer).verify(issuer.token(jti=None))


async def test_expired_token_is_refused() -> None:
    issuer = TestTokenIssuer()

    with pytest.raises(Unauthorized, match="expired"):
        await _verifier(issuer).verify(issuer.token(ttl_seconds=-10))


def test_headers_carry_a_bearer_token() -> None:
    headers = TestTokenIssuer().headers(role="service")

    assert headers["Authorization"].startswith("Bearer ey")


def test_jwks_publishes_one_eddsa_key_with_its_kid() -> None:
    (key,) = TestTokenIssuer(kid="k-9").jwks()["keys"]

    assert (key["kid"], key["alg"], key["kty"], key["crv"]) == ("k-9", "EdDSA", "OKP", "Ed25519")
    assert "d" not in key  # public half only
