"""Tracing under `make up`: each service's spans carry its own name, and the ready banner says
where the spans go (the OpenTelemetry SDK's standard OTEL_* variables, API.md "Telemetry")."""

from __future__ import annotations

from pathlib import Path

import fleet as runner
import pytest

from tests.conftest import CALLERS_SERVICE_NAME
from tests.fleet import Fleet

SECRETS = {
    "admin_password": "a-local-admin-password",
    "orders_client_secret": "a-local-client-secret",
    "orders_client_secret_hash": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
}


def _config(environ: dict[str, str]) -> runner.FleetConfig:
    return runner.FleetConfig.from_environ({"FLEET_DATA_DIR": "/nonexistent", **environ})


def _process_environment(pid: int) -> dict[str, str]:
    """The environment a process was started with (``/proc/<pid>/environ``)."""
    entries = Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
    return dict(entry.split("=", 1) for entry in entries if "=" in entry)


def test_service_env_names_each_service_whatever_the_caller_exported() -> None:
    config = _config({"OTEL_SERVICE_NAME": "one-name", "OTEL_TRACES_SAMPLER": "always_on"})

    for service in runner.SERVICES:
        # What the runner gives each service's process: the caller's environment, then its own.
        environment = {**config.environ, **runner.service_env(config, service, SECRETS)}

        assert environment["OTEL_SERVICE_NAME"] == service.name
        assert environment["OTEL_TRACES_SAMPLER"] == "always_on"


@pytest.mark.parametrize(
    ("environ", "line"),
    [
        (
            {},
            "tracing: exports nothing until OTEL_EXPORTER_OTLP_ENDPOINT is set "
            "(an OTLP/HTTP receiver, e.g. http://127.0.0.1:4318)",
        ),
        (
            # Empty is unset, as the services read it.
            {"OTEL_EXPORTER_OTLP_ENDPOINT": " ", "OTEL_TRACES_SAMPLER": "always_on"},
            "tracing: exports nothing until OTEL_EXPORTER_OTLP_ENDPOINT is set "
            "(an OTLP/HTTP receiver, e.g. http://127.0.0.1:4318)",
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
                "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                "OTEL_TRACES_SAMPLER_ARG": "0.1",
            },
            "tracing: spans to http://127.0.0.1:4318 over OTLP/HTTP, "
            "sampler parentbased_traceidratio 0.1",
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
            "tracing: spans to http://collector:4318 over OTLP/HTTP, sampler parentbased_always_on",
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
                "OTEL_TRACES_SAMPLER": "traceidratio",
            },
            "tracing: spans to http://collector:4318 over OTLP/HTTP, sampler traceidratio 1.0",
        ),
        (
            {"OTEL_SDK_DISABLED": "TRUE", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
            "tracing: off (OTEL_SDK_DISABLED=true), no spans are made",
        ),
    ],
    ids=["unset", "empty", "ratio", "default-sampler", "ratio-without-argument", "disabled"],
)
def test_the_tracing_line_says_where_the_spans_go(environ: dict[str, str], line: str) -> None:
    assert runner.tracing_summary(_config(environ)) == line


def test_each_running_service_has_its_own_service_name(fleet: Fleet) -> None:
    names = {
        service.name: _process_environment(fleet.pid_of(service.name)).get("OTEL_SERVICE_NAME")
        for service in runner.SERVICES
    }

    assert fleet.env["OTEL_SERVICE_NAME"] == CALLERS_SERVICE_NAME
    assert names == {service.name: service.name for service in runner.SERVICES}


def test_the_ready_banner_has_the_tracing_line(fleet: Fleet) -> None:
    expected = runner.tracing_summary(runner.FleetConfig.from_environ(fleet.env))

    tracing = [line.strip() for line in fleet.lines_of("fleet") if "tracing:" in line]

    assert tracing == [expected]
