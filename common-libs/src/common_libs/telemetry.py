"""Tracing with OpenTelemetry: set up once per process from the standard ``OTEL_*`` variables.

:func:`configure_tracing` installs the SDK's tracer provider only when there is somewhere to
export to (``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) and the SDK
is not disabled (``OTEL_SDK_DISABLED``). Otherwise the API's no-op tracer stays: it records
nothing, yet hands the incoming span context on unchanged.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import TYPE_CHECKING

from opentelemetry import trace

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

__all__ = ["configure_tracing", "flush_spans", "tracer_provider_from_env"]

_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")

_lock = threading.Lock()
_installed: TracerProvider | None = None


def tracer_provider_from_env(*, service: str, version: str) -> TracerProvider | None:
    """The SDK provider that the ``OTEL_*`` variables ask for, or None when they ask for no export.

    Resource: ``service.name`` (``OTEL_SERVICE_NAME``, else ``service``) and ``service.version``,
    under whatever ``OTEL_RESOURCE_ATTRIBUTES`` says. Sampler: the SDK's own reading of
    ``OTEL_TRACES_SAMPLER``/``OTEL_TRACES_SAMPLER_ARG`` (parent-based always-on by default). The
    spans go to the OTLP/HTTP exporter (which reads the other ``OTEL_EXPORTER_OTLP_*``) through a
    batch processor; the provider flushes what is pending when the process exits.
    """
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if not any(os.environ.get(name, "").strip() for name in _ENDPOINT_VARIABLES):
        return None
    # Imported here: a process that exports nothing never loads the SDK, protobuf and requests.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    own = Resource.create({"service.name": service, "service.version": version})
    # Resource.create lets the attributes given override the environment's; the other way round
    # here, so that OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win.
    provider = TracerProvider(resource=own.merge(OTELResourceDetector().detect()))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def configure_tracing(*, service: str, version: str) -> TracerProvider | None:
    """Install :func:`tracer_provider_from_env`'s provider as this process's, once.

    Returns the provider installed, by this call or an earlier one, or None while there is none.
    Later calls change nothing: tests build many apps in one process.
    """
    global _installed
    with _lock:
        if _installed is None:
            provider = tracer_provider_from_env(service=service, version=version)
            if provider is not None:
                trace.set_tracer_provider(provider)
                _installed = provider
        return _installed


async def flush_spans() -> bool:
    """Send the spans still waiting for their batch; False if some could not be sent in time.

    The provider also does it when the process exits, but uvicorn ends a process stopped by
    SIGTERM with that signal once it has shut down, and then no exit handler runs: the app's
    lifespan calls this last (``create_service_app`` does). A process that exports nothing has
    nothing to send.
    """
    provider = _installed
    return provider is None or await asyncio.to_thread(provider.force_flush)
