"""configure_tracing and tracer_provider_from_env: the OTEL_* variables decide, once a process;
a service's lifespan ends by sending the spans still batched."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from common_libs.service_app import create_service_app
from common_libs.telemetry import configure_tracing, tracer_provider_from_env
from common_libs.testing.otlp import OtlpReceiver

ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing from the environment this suite runs in."""
    for name in (*ENDPOINTS, "OTEL_SDK_DISABLED", "OTEL_SERVICE_NAME", "OTEL_TRACES_SAMPLER"):
        monkeypatch.delenv(name, raising=False)


def provider_for(service: str = "orders-service") -> TracerProvider:
    provider = tracer_provider_from_env(service=service, version="4.5.6")
    assert provider is not None
    return provider


def test_without_an_endpoint_nothing_is_exported() -> None:
    assert tracer_provider_from_env(service="orders-service", version="4.5.6") is None


def test_a_disabled_sdk_exports_nothing_even_with_an_endpoint(
    monkeypatch: pytest.MonkeyPatch, receiver: OtlpReceiver
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_SDK_DISABLED", "True")

    assert tracer_provider_from_env(service="orders-service", version="4.5.6") is None


def test_spans_go_to_the_endpoint_named_by_the_service_and_its_version(
    monkeypatch: pytest.MonkeyPatch, receiver: OtlpReceiver
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    provider = provider_for()

    with provider.get_tracer("test").start_as_current_span("place order"):
        pass
    provider.shutdown()  # what the process's exit does: pending spans are sent

    [span] = receiver.wait_for_spans(lambda span: span.name == "place order")
    assert span.service == "orders-service"
    assert span.resource["service.version"] == "4.5.6"


def test_the_environment_names_the_service_and_may_name_the_traces_endpoint_alone(
    monkeypatch: pytest.MonkeyPatch, receiver: OtlpReceiver
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.traces_url)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "orders-canary")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=staging")
    provider = provider_for()

    with provider.get_tracer("test").start_as_current_span("cancel order"):
        pass
    provider.shutdown()

    [span] = receiver.wait_for_spans(lambda span: span.name == "cancel order")
    assert span.service == "orders-canary"
    assert span.resource["deployment.environment.name"] == "staging"
    assert span.resource["service.version"] == "4.5.6"


def caller(*, sampled: bool) -> Context:
    """The context of a request whose caller sent a traceparent."""
    remote = SpanContext(
        trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736,
        span_id=0x00F067AA0BA902B7,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT),
    )
    return trace.set_span_in_context(NonRecordingSpan(remote))


def test_the_default_sampler_records_new_traces_and_follows_the_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    provider = provider_for()
    tracer = provider.get_tracer("test")

    assert tracer.start_span("new trace").is_recording()
    assert tracer.start_span("sampled caller", caller(sampled=True)).is_recording()
    assert not tracer.start_span("unsampled caller", caller(sampled=False)).is_recording()
    provider.shutdown()


def test_the_sampler_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0")
    provider = provider_for()
    tracer = provider.get_tracer("test")

    assert not tracer.start_span("new trace").is_recording()
    assert tracer.start_span("sampled caller", caller(sampled=True)).is_recording()
    provider.shutdown()


def test_configuring_again_keeps_the_provider_installed_first(tracing: TracerProvider) -> None:
    assert configure_tracing(service="another-service", version="0.0.1") is tracing
    assert trace.get_tracer_provider() is tracing


@dataclass(frozen=True)
class Settings:
    log_level: str = "WARNING"
    log_json: bool = True


@pytest.mark.usefixtures("restore_logging")
async def test_the_apps_lifespan_ends_by_sending_the_spans_still_batched(
    tracing: TracerProvider, otlp: OtlpReceiver
) -> None:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        with trace.get_tracer("test").start_as_current_span("closing the pool") as closing:
            app.state.closing = closing

    app = create_service_app(
        name="orders-service",
        version="1.0.0",
        summary="Orders.",
        lifespan=lifespan,
        settings=Settings(),
        ready_checks={},
    )
    async with app.router.lifespan_context(app):
        pass

    # Batches wait a minute here: only the flush at the lifespan's end sent it so soon.
    trace_id = format(app.state.closing.get_span_context().trace_id, "032x")
    assert [span.name for span in otlp.matching(lambda s: s.trace_id == trace_id)] == [
        "closing the pool"
    ]
