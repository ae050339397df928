"""GenAI spans for the model calls, after OpenTelemetry's GenAI semantic conventions.

The chat completions go through the SDK's own ``post`` (see ``llm_integration``), which the
``opentelemetry-instrumentation-openai-v2`` wrappers of ``chat.completions.create`` never see.
The GenAI telemetry handler of ``opentelemetry-util-genai`` (the one those instrumentations are
built on) makes the same span here: ``chat <model>``, kind CLIENT, with the provider, the
request model, the server, the response model and id, the finish reasons and the tokens in and
out, and, streamed, the time to the first chunk. Message content is never recorded (the
handler's default): it would put a person's words and the system prompt into the traces.

Without a tracer provider (no ``OTEL_EXPORTER_OTLP_ENDPOINT``) the spans are the API's no-op
ones and the metrics the no-op meter's.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from opentelemetry.util.genai.handler import TelemetryHandler

if TYPE_CHECKING:
    from opentelemetry.util.genai.invocation import InferenceInvocation

__all__ = ["ModelCallTelemetry", "record_usage"]

PROVIDER = "openai"


@cache
def _handler() -> TelemetryHandler:
    return TelemetryHandler(instrumentation_scope_name=__name__)


class ModelCallTelemetry:
    """Starts the span of each chat completion against one API (its base URL).

    ``handler`` defaults to one over the global tracer and meter providers."""

    def __init__(self, base_url: str, *, handler: TelemetryHandler | None = None) -> None:
        self._handler = handler or _handler()
        parts = urlsplit(base_url)
        self._address = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)

    def chat(self, model: str) -> InferenceInvocation:
        """Start the span of a chat completion (end it with ``stop`` or ``fail``)."""
        return self._handler.inference(
            PROVIDER,
            request_model=model,
            server_address=self._address,
            server_port=self._port,
            operation_name="chat",
        )


def record_usage(
    call: InferenceInvocation,
    *,
    input_tokens: int | None,
    output_tokens: int | None,
    finish_reasons: Iterable[str],
    response_model: str | None = None,
    response_id: str | None = None,
) -> None:
    """Put what the answer reported on the span (before ``stop``)."""
    call.input_tokens = input_tokens
    call.output_tokens = output_tokens
    call.finish_reasons = list(finish_reasons) or None
    call.response_model_name = response_model
    call.response_id = response_id
