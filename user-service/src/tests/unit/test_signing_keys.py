"""Signing keys: the local key file, the JWKS (public halves only), rotation and retirement."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.security.signing_keys import (
    KeyRing,
    SigningKeyError,
    load_key_ring,
    load_private_key,
    load_public_keys,
    private_key_pem,
    public_key_pem,
    read_or_create_key_file,
)
from tests.conftest import make_settings


def test_missing_key_file_is_generated_readable_only_by_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "data" / "signing-key.pem"

    read_or_create_key_file(path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_existing_key_file_is_reused(tmp_path: Path) -> None:
    path = tmp_path / "signing-key.pem"
    first = read_or_create_key_file(path)

    second = read_or_create_key_file(path)

    assert private_key_pem(second) == private_key_pem(first)


def test_processes_generating_at_once_end_up_with_one_key(tmp_path: Path) -> None:
    path = tmp_path / "signing-key.pem"

    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = list(pool.map(lambda _: private_key_pem(read_or_create_key_file(path)), range(8)))

    assert len(set(keys)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["signing-key.pem"]


def test_configured_pem_wins_over_the_key_file(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    settings = make_settings(
        signing_key_pem=private_key_pem(key).decode(), signing_key_file=tmp_path / "unused.pem"
    )

    ring = load_key_ring(settings)

    assert private_key_pem(ring.private_key) == private_key_pem(key)
    assert not (tmp_path / "unused.pem").exists()


def test_malformed_pem_error_does_not_contain_the_key_material() -> None:
    text = "-----BEGIN PRIVATE KEY-----\nTOPSECRETMATERIAL\n-----END PRIVATE KEY-----\n"

    with pytest.raises(SigningKeyError) as caught:
        load_private_key(text.encode(), source="USERS_SIGNING_KEY_PEM")

    assert "TOPSECRET" not in str(caught.value)


def test_jwks_holds_public_keys_only() -> None:
    ring = KeyRing(private_key=Ed25519PrivateKey.generate())

    (jwk,) = ring.jwks()["keys"]

    assert set(jwk) == {"kty", "crv", "x", "kid", "alg", "use"}
    assert (jwk["alg"], jwk["use"], jwk["kid"]) == ("EdDSA", "sig", ring.kid)


def test_previous_public_keys_parse_from_concatenated_pems() -> None:
    keys = [Ed25519PrivateKey.generate().public_key() for _ in range(2)]

    parsed = load_public_keys(b"".join(map(public_key_pem, keys)).decode())

    assert [public_key_pem(k) for k in parsed] == [public_key_pem(k) for k in keys]


async def test_previous_keys_leave_the_jwks_once_their_tokens_expired() -> None:
    previous = Ed25519PrivateKey.generate().public_key()
    now = datetime.now(UTC)
    clock = [now]
    ring = KeyRing(
        private_key=Ed25519PrivateKey.generate(),
        previous_public_keys=[previous],
        previous_keys_expire_at=now + timedelta(seconds=900),
        clock=lambda: clock[0],
    )
    previous_kid = ring.jwks()["keys"][1]["kid"]

    published_before = len(ring.jwks()["keys"])
    clock[0] = now + timedelta(seconds=901)

    assert published_before == 2
    assert len(ring.jwks()["keys"]) == 1
    assert await ring.get_key(previous_kid) is None
    assert await ring.get_key(ring.kid) is not None
