"""Settings, read from ``CHAT_*`` environment variables (and the conventional ``OPENAI_*`` ones)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal, Self

from common_libs.settings import VerifyingServiceSettings
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

SERVICE_NAME = "chat-llm-service"

EncodingName = Literal["cl100k_base", "o200k_base"]


class Settings(VerifyingServiceSettings):
    """Everything the service can be configured with; secrets are ``SecretStr``."""

    # validate_by_name: a field with aliases (the OPENAI_* ones) may still be set by its name.
    model_config = SettingsConfigDict(env_prefix="CHAT_", validate_by_name=True)

    database_url: SecretStr = SecretStr("postgresql+asyncpg://postgres@127.0.0.1:5432/chat")

    # The OpenAI-compatible API. Configured = a key or a base URL is set (a local server such as
    # Ollama or vLLM may need no key).
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("CHAT_OPENAI_API_KEY", "OPENAI_API_KEY")
    )
    openai_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("CHAT_OPENAI_BASE_URL", "OPENAI_BASE_URL")
    )
    chat_model: str = Field(
        default="gpt-4o-mini",
        min_length=1,
        validation_alias=AliasChoices("CHAT_MODEL"),
    )
    embedding_model: str = Field(
        default="text-embedding-3-small",
        min_length=1,
        validation_alias=AliasChoices("CHAT_EMBEDDING_MODEL", "EMBEDDING_MODEL"),
    )
    context_window_tokens: int = Field(default=128_000, ge=512, le=10_000_000)
    max_output_tokens: int = Field(default=1024, ge=16, le=1_000_000)
    openai_timeout_seconds: float = Field(default=60.0, gt=0, le=600)
    openai_max_retries: int = Field(default=2, ge=0, le=10)

    daily_token_quota: int = Field(default=200_000, ge=1)

    # The assistant's tools (app.services.assistant_tools): rounds of tool calls a turn may run
    # before the model must answer in words (0: no tools, retrieval only), and the most tokens
    # one tool result may take of the prompt.
    max_tool_rounds: int = Field(default=3, ge=0, le=10)
    tool_result_max_tokens: int = Field(default=1500, ge=100, le=100_000)
    # The marker at the start of the system prompt (app.services.leak_guard); unset: a random
    # one per process.
    system_prompt_canary: SecretStr | None = Field(default=None, min_length=16, max_length=200)

    catalog_url: str = "http://127.0.0.1:8002"
    catalog_timeout_seconds: float = Field(default=1.5, gt=0, le=30)
    grounding_products: int = Field(default=5, ge=0, le=20)

    # The assistant's order tools read the caller's orders here, with the caller's own token.
    orders_url: str = "http://127.0.0.1:8003"
    orders_timeout_seconds: float = Field(default=2.0, gt=0, le=30)

    fallback_encoding: EncodingName = "o200k_base"
    tiktoken_cache_dir: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("CHAT_TIKTOKEN_CACHE_DIR", "TIKTOKEN_CACHE_DIR"),
    )

    @field_validator("openai_base_url", mode="before")
    @classmethod
    def _blank_base_url_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("openai_api_key", mode="before")
    @classmethod
    def _blank_key_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _output_fits_the_window(self) -> Self:
        if self.max_output_tokens >= self.context_window_tokens // 2:
            raise ValueError("max_output_tokens must be less than half of context_window_tokens")
        return self

    @property
    def is_llm_configured(self) -> bool:
        """True when an API key or a base URL of an OpenAI-compatible server is set."""
        return self.openai_api_key is not None or self.openai_base_url is not None


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (tests build their own and pass them to ``create_app``)."""
    return Settings()
