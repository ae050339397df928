"""Settings come from ORDERS_* variables and keep secrets out of reprs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.config import Settings


def test_settings_are_read_from_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERS_DATABASE_URL", "postgresql+asyncpg://u:pw@db:5432/orders")
    monkeypatch.setenv("ORDERS_JWT_AUDIENCE", "shop")

    settings = Settings()

    assert settings.database_url.get_secret_value() == "postgresql+asyncpg://u:pw@db:5432/orders"
    assert settings.jwt_audience == "shop"


def test_database_url_is_hidden_in_repr() -> None:
    settings = Settings(database_url="postgresql+asyncpg://u:s3cret@db/orders")  # type: ignore[arg-type]

    assert "s3cret" not in repr(settings)


def test_invalid_pool_size_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(database_pool_size=0)


def test_test_pause_hook_is_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="refused in production"):
        Settings(
            environment="production",
            service_client_secret="s3cret",  # type: ignore[arg-type]
            test_pause_after_reserve_seconds=5,
        )


def test_test_pause_hook_is_allowed_outside_production() -> None:
    settings = Settings(environment="test", test_pause_after_reserve_seconds=5)

    assert settings.test_pause_after_reserve_seconds == 5


def test_provider_states_are_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="ORDERS_PROVIDER_STATES_ENABLED"):
        Settings(
            environment="production",
            service_client_secret="s3cret",  # type: ignore[arg-type]
            provider_states_enabled=True,
        )


def test_production_requires_the_service_client_secret() -> None:
    with pytest.raises(ValidationError, match="ORDERS_SERVICE_CLIENT_SECRET"):
        Settings(environment="production")


def test_pending_max_age_must_exceed_twice_the_catalog_deadline() -> None:
    with pytest.raises(ValidationError, match="PENDING_MAX_AGE"):
        Settings(catalog_deadline_seconds=3, pending_max_age_seconds=6)


def test_idempotency_keys_are_kept_at_least_24_hours() -> None:
    with pytest.raises(ValidationError):
        Settings(idempotency_ttl_hours=23)


def test_service_client_secret_is_hidden_in_repr_and_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORDERS_SERVICE_CLIENT_SECRET", "top-s3cret-value")
    monkeypatch.setenv("ORDERS_CATALOG_DEADLINE_SECONDS", "not-a-number")

    with pytest.raises(ValidationError) as refused:
        Settings()
    monkeypatch.delenv("ORDERS_CATALOG_DEADLINE_SECONDS")

    assert "top-s3cret-value" not in str(refused.value)
    assert "top-s3cret-value" not in repr(Settings())
