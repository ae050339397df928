"""Settings come from CHAT_* variables (and the conventional OPENAI_* ones); secrets stay hidden."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.config import Settings

CONNECTION_VARIABLES = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "CHAT_OPENAI_API_KEY",
    "CHAT_OPENAI_BASE_URL",
    "CHAT_MODEL",
    "EMBEDDING_MODEL",
    "CHAT_EMBEDDING_MODEL",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own OpenAI variables must not leak into these tests."""
    for name in CONNECTION_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_settings_are_read_from_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_DATABASE_URL", "postgresql+asyncpg://u:pw@db:5432/chat")
    monkeypatch.setenv("CHAT_JWT_AUDIENCE", "shop")

    settings = Settings()

    assert settings.database_url.get_secret_value() == "postgresql+asyncpg://u:pw@db:5432/chat"
    assert settings.jwt_audience == "shop"


def test_openai_connection_is_read_from_the_conventional_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-conventional")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1")
    monkeypatch.setenv("CHAT_MODEL", "llama3.1:8b")
    monkeypatch.setenv("EMBEDDING_MODEL", "nomic-embed-text")

    settings = Settings()

    assert settings.openai_api_key is not None
    assert settings.openai_api_key.get_secret_value() == "sk-conventional"
    assert settings.openai_base_url == "http://127.0.0.1:11434/v1"
    assert (settings.chat_model, settings.embedding_model) == ("llama3.1:8b", "nomic-embed-text")
    assert settings.is_llm_configured


def test_prefixed_names_are_accepted_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    monkeypatch.setenv("CHAT_EMBEDDING_MODEL", "bge-m3")

    settings = Settings()

    assert settings.openai_base_url == "http://127.0.0.1:8000/v1"
    assert settings.openai_api_key is None
    assert settings.embedding_model == "bge-m3"
    assert settings.is_llm_configured


def test_blank_connection_variables_mean_not_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "")
    monkeypatch.setenv("OPENAI_BASE_URL", "  ")

    assert not Settings().is_llm_configured


def test_secrets_are_hidden_in_repr() -> None:
    settings = Settings(
        database_url="postgresql+asyncpg://u:s3cret@db/chat",  # type: ignore[arg-type]
        openai_api_key="sk-very-secret",  # type: ignore[arg-type]
    )

    assert "s3cret" not in repr(settings)
    assert "sk-very-secret" not in repr(settings)


def test_the_orders_service_is_read_from_prefixed_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHAT_ORDERS_URL", "http://order-processing-service:8000")
    monkeypatch.setenv("CHAT_ORDERS_TIMEOUT_SECONDS", "0.8")

    settings = Settings()

    assert (settings.orders_url, settings.orders_timeout_seconds) == (
        "http://order-processing-service:8000",
        0.8,
    )


@pytest.mark.parametrize("seconds", [0, -1, 31])
def test_an_orders_deadline_out_of_range_is_refused(seconds: float) -> None:
    with pytest.raises(ValidationError):
        Settings(orders_timeout_seconds=seconds)


def test_invalid_pool_size_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(database_pool_size=0)


def test_output_tokens_must_leave_room_in_the_context_window() -> None:
    with pytest.raises(ValidationError):
        Settings(context_window_tokens=4096, max_output_tokens=2048)


def test_an_invalid_value_is_not_echoed_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # A misplaced secret (a URL with its password in the wrong variable) must not reach a log.
    monkeypatch.setenv("CHAT_DATABASE_POOL_SIZE", "postgresql://u:hunter2@db/x")

    with pytest.raises(ValidationError) as caught:
        Settings()

    assert "hunter2" not in str(caught.value)
