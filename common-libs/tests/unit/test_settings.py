"""The settings base classes: one prefix per service, secrets hidden, defaults the fleet shares."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError
from pydantic_settings import SettingsConfigDict

from common_libs import settings as settings_module
from common_libs.settings import (
    DENY_LIST_MARGIN_SECONDS,
    SECRETS_DIR_VARIABLE,
    ServiceSettings,
    VerifyingServiceSettings,
)


class ShopSettings(VerifyingServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SHOP_")

    database_url: SecretStr = SecretStr("postgresql+asyncpg://postgres@127.0.0.1:5432/shop")


class BareSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="BARE_")


def test_a_service_reads_its_own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_DATABASE_URL", "postgresql+asyncpg://u:pw@db:5432/shop")
    monkeypatch.setenv("SHOP_JWKS_URL", "http://users:8000/auth/jwks")
    monkeypatch.setenv("DATABASE_POOL_SIZE", "99")  # another prefix's, or none: not ours

    settings = ShopSettings()

    assert settings.database_url.get_secret_value() == "postgresql+asyncpg://u:pw@db:5432/shop"
    assert settings.jwks_url == "http://users:8000/auth/jwks"
    assert settings.database_pool_size == 20


def test_defaults_are_the_fleets() -> None:
    settings = ShopSettings()

    assert (settings.environment, settings.log_level, settings.log_json) == (
        "development",
        "INFO",
        True,
    )
    assert (settings.jwt_issuer, settings.jwt_audience) == ("fleet-user-service", "fleet")
    assert settings.http_timeout_seconds == 3.0
    assert "shop" not in repr(settings)  # the database URL is a secret


def test_a_rejected_value_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_DATABASE_POOL_SIZE", "postgresql://u:hunter2@db/x")

    with pytest.raises(ValidationError) as caught:
        ShopSettings()

    assert "hunter2" not in str(caught.value)


def test_a_service_without_a_default_database_url_needs_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ValidationError, match="database_url"):
        BareSettings()

    monkeypatch.setenv("BARE_DATABASE_URL", "postgresql+asyncpg://db/bare")
    assert BareSettings().database_url.get_secret_value() == "postgresql+asyncpg://db/bare"


def test_the_broker_url_is_the_fleets_unprefixed_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ShopSettings().nats_url == "nats://127.0.0.1:4222"
    monkeypatch.setenv("NATS_URL", "nats://nats:4222")
    assert ShopSettings().nats_url == "nats://nats:4222"
    assert ShopSettings(nats_url="nats://elsewhere:4222").nats_url == "nats://elsewhere:4222"


def test_the_deny_list_keeps_ids_a_minute_longer_than_the_longest_token_lives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert ShopSettings().access_token_max_lifetime_seconds == 900
    assert ShopSettings().deny_list_keep_seconds == 900 + DENY_LIST_MARGIN_SECONDS == 960
    monkeypatch.setenv("SHOP_ACCESS_TOKEN_MAX_LIFETIME_SECONDS", "3600")
    assert ShopSettings().deny_list_keep_seconds == 3660
    monkeypatch.setenv("SHOP_ACCESS_TOKEN_MAX_LIFETIME_SECONDS", "10")
    with pytest.raises(ValidationError, match="access_token_max_lifetime_seconds"):
        ShopSettings()


def _write_secrets(directory: Path, **files: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, value in files.items():
        # As a mounted Secret's files often end: with a newline, which is not part of the value.
        (directory / name).write_text(value + "\n")
    return directory


def test_a_secret_comes_from_its_file_in_the_secrets_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = "postgresql+asyncpg://u:from-file@db:5432/shop"
    folder = _write_secrets(tmp_path / "secrets", SHOP_DATABASE_URL=url, NATS_URL="nats://n:4222")
    monkeypatch.setenv(SECRETS_DIR_VARIABLE, str(folder))

    settings = ShopSettings()

    assert settings.database_url.get_secret_value() == url
    assert settings.nats_url == "nats://n:4222"


def test_an_environment_variable_wins_over_the_secret_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = _write_secrets(
        tmp_path / "secrets",
        SHOP_DATABASE_URL="postgresql+asyncpg://u:from-file@db:5432/shop",
        SHOP_LOG_LEVEL="DEBUG",
    )
    monkeypatch.setenv(SECRETS_DIR_VARIABLE, str(folder))
    monkeypatch.setenv("SHOP_DATABASE_URL", "postgresql+asyncpg://u:from-env@db:5432/shop")

    settings = ShopSettings()

    assert settings.database_url.get_secret_value().startswith("postgresql+asyncpg://u:from-env@")
    assert settings.log_level == "DEBUG"


def test_a_secrets_dir_that_is_not_there_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(SECRETS_DIR_VARIABLE, str(tmp_path / "missing"))

    with pytest.raises(FileNotFoundError, match="SECRETS_DIR names no folder"):
        ShopSettings()


def test_the_default_secrets_dir_is_read_when_present_and_ignored_when_absent(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(SECRETS_DIR_VARIABLE, raising=False)
    default = _write_secrets(tmp_path / "run-secrets", SHOP_LOG_LEVEL="WARNING")
    monkeypatch.setattr(settings_module, "DEFAULT_SECRETS_DIR", tmp_path / "absent")

    assert settings_module.secrets_dir() is None
    assert ShopSettings().log_level == "INFO"

    monkeypatch.setattr(settings_module, "DEFAULT_SECRETS_DIR", default)

    assert settings_module.secrets_dir() == default
    assert ShopSettings().log_level == "WARNING"
