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
