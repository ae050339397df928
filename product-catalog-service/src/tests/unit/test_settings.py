"""Settings come from CATALOG_* variables and keep secrets out of reprs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.config import Settings


def test_settings_are_read_from_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATALOG_DATABASE_URL", "postgresql+asyncpg://u:pw@db:5432/catalog")
    monkeypatch.setenv("CATALOG_JWT_AUDIENCE", "shop")

    settings = Settings()

    assert settings.database_url.get_secret_value() == "postgresql+asyncpg://u:pw@db:5432/catalog"
    assert settings.jwt_audience == "shop"


def test_database_url_is_hidden_in_repr() -> None:
    settings = Settings(database_url="postgresql+asyncpg://u:s3cret@db/catalog")  # type: ignore[arg-type]

    assert "s3cret" not in repr(settings)


def test_invalid_pool_size_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(database_pool_size=0)


def test_tokens_are_expected_from_user_service_by_default() -> None:
    assert Settings().jwt_issuer == "fleet-user-service"


def test_reservation_ttls_must_be_ordered() -> None:
    with pytest.raises(ValidationError, match="min <= default <= max"):
        Settings(reservation_min_ttl_seconds=700, reservation_default_ttl_seconds=600)


def test_reservation_settings_are_read_from_prefixed_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CATALOG_RESERVATION_SWEEP_INTERVAL_SECONDS", "0.5")
    monkeypatch.setenv("CATALOG_RESERVATION_MAX_TTL_SECONDS", "900")

    settings = Settings()

    assert settings.reservation_sweep_interval_seconds == 0.5
    assert settings.reservation_max_ttl_seconds == 900


def test_provider_states_are_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="CATALOG_PROVIDER_STATES_ENABLED"):
        Settings(environment="production", provider_states_enabled=True)


def test_an_invalid_value_is_not_echoed_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # A misplaced secret (a URL with its password in the wrong variable) must not reach a log.
    monkeypatch.setenv("CATALOG_DATABASE_POOL_SIZE", "postgresql://u:hunter2@db/x")

    with pytest.raises(ValidationError) as caught:
        Settings()

    assert "hunter2" not in str(caught.value)
