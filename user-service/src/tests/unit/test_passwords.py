"""Argon2id hashing: format, verification, and telling when a hash needs an upgrade."""

from __future__ import annotations

from app.security.passwords import Argon2Parameters, PasswordHashing

CHEAP = Argon2Parameters(time_cost=1, memory_cost_kib=1024, parallelism=1)


async def test_hash_is_argon2id_with_the_configured_parameters() -> None:
    passwords = PasswordHashing(CHEAP, concurrency=2)

    hashed = await passwords.hash("correct horse")

    assert hashed.startswith("$argon2id$v=19$m=1024,t=1,p=1$")


async def test_verify_accepts_the_password_and_refuses_another() -> None:
    passwords = PasswordHashing(CHEAP, concurrency=2)
    hashed = await passwords.hash("correct horse")

    assert await passwords.verify(hashed, "correct horse")
    assert not await passwords.verify(hashed, "wrong horse")


async def test_malformed_hash_never_matches() -> None:
    passwords = PasswordHashing(CHEAP, concurrency=2)

    assert not await passwords.verify("not-a-hash", "anything")


async def test_hash_made_with_other_parameters_needs_rehash() -> None:
    old = await PasswordHashing(CHEAP, concurrency=1).hash("pw-123456")
    stronger = PasswordHashing(
        Argon2Parameters(time_cost=2, memory_cost_kib=1024, parallelism=1), concurrency=1
    )

    assert stronger.needs_rehash(old)
    assert not stronger.needs_rehash(await stronger.hash("pw-123456"))
