"""Settings come from USERS_* variables, keep secrets out of reprs and errors, and refuse to run
production with a generated key or a weak admin password."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from app.config import InsecureSettingsError, Settings
from app.main import create_app
from app.security.signing_keys import private_key_pem

PEM = private_key_pem(Ed25519PrivateKey.generate()).decode()
STRONG = "Tr0ub4dor&3-horse-staple"


def test_settings_are_read_from_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USERS_DATABASE_URL", "postgresql+asyncpg://u:pw@db:5432/users")
    monkeypatch.setenv("USERS_JWT_AUDIENCE", "shop")
    monkeypatch.setenv("USERS_SERVICE_CLIENTS", '{"order-processing-service": "$argon2id$v=19$x"}')

    settings = Settings()

    assert settings.database_url.get_secret_value() == "postgresql+asyncpg://u:pw@db:5432/users"
    assert settings.jwt_audience == "shop"
    assert list(settings.service_clients) == ["order-processing-service"]


def test_defaults_match_the_fleet_contract() -> None:
    settings = Settings()

    assert (settings.jwt_issuer, settings.jwt_audience) == ("fleet-user-service", "fleet")
    assert settings.access_token_ttl_seconds == 900
    assert settings.access_token_max_lifetime_seconds == 900


def test_tokens_may_not_outlive_what_the_deny_lists_cover(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USERS_ACCESS_TOKEN_TTL_SECONDS", "1800")
    with pytest.raises(ValidationError, match="may not exceed USERS_ACCESS_TOKEN_MAX_LIFETIME"):
        Settings()

    monkeypatch.setenv("USERS_ACCESS_TOKEN_MAX_LIFETIME_SECONDS", "1800")
    assert Settings().deny_list_keep_seconds == 1800 + 60


def test_secrets_are_hidden_in_repr() -> None:
    settings = Settings(
        database_url="postgresql+asyncpg://u:s3cret@db/users",  # type: ignore[arg-type]
        signing_key_pem=PEM,  # type: ignore[arg-type]
        admin_email="admin@example.com",
        admin_password="hunter22-hunter22",  # type: ignore[arg-type]
    )

    text = repr(settings)

    assert "s3cret" not in text
    assert "PRIVATE KEY" not in text
    assert "hunter22" not in text


def test_invalid_admin_password_error_does_not_echo_it() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(admin_email="admin@example.com", admin_password="short7!")  # type: ignore[arg-type]

    assert "short7!" not in str(caught.value)


def test_invalid_pool_size_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(database_pool_size=0)


def test_admin_email_without_password_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(admin_email="admin@example.com")


def test_service_client_secret_that_is_no_argon2id_hash_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(service_clients={"svc": "plain-secret"})  # type: ignore[dict-item]


def test_production_without_signing_key_refuses_to_start() -> None:
    settings = Settings(environment="production")

    with pytest.raises(InsecureSettingsError, match="USERS_SIGNING_KEY_PEM"):
        create_app(settings)


def test_production_with_weak_admin_password_refuses_to_start() -> None:
    settings = Settings(
        environment="production",
        signing_key_pem=PEM,  # type: ignore[arg-type]
        admin_email="admin@example.com",
        admin_password="password123",  # type: ignore[arg-type]
    )

    with pytest.raises(InsecureSettingsError, match="USERS_ADMIN_PASSWORD") as caught:
        create_app(settings)
    assert "password123" not in str(caught.value)


def test_production_with_provider_states_refuses_to_start() -> None:
    settings = Settings(
        environment="production",
        signing_key_pem=PEM,  # type: ignore[arg-type]
        provider_states_enabled=True,
    )

    with pytest.raises(InsecureSettingsError, match="USERS_PROVIDER_STATES_ENABLED"):
        create_app(settings)


def test_production_with_key_and_strong_admin_password_starts() -> None:
    settings = Settings(
        environment="production",
        signing_key_pem=PEM,  # type: ignore[arg-type]
        admin_email="admin@example.com",
        admin_password=STRONG,  # type: ignore[arg-type]
    )

    assert settings.production_problems() == []
    assert create_app(settings).title == "user-service"
