"""The Docker Compose file is valid and starts the fleet in dependency order (checked offline)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping

import yaml

from tests.fleet import ROOT

SERVICES = (
    "user-service",
    "product-catalog-service",
    "order-processing-service",
    "chat-llm-service",
)
# What a developer exports before `docker compose up` to send the fleet's spans somewhere.
TRACING = {
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector:4318",
    "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
    "OTEL_TRACES_SAMPLER_ARG": "0.25",
}


def _config(environment: Mapping[str, str] | None = None) -> dict[str, object]:
    """The file as docker-compose reads it, in ``environment`` (else the test's own)."""
    docker_compose = shutil.which("docker-compose")
    # make test installs Debian's docker-compose (it needs no Docker daemon to check a file).
    assert docker_compose is not None, "docker-compose is not installed"
    result = subprocess.run(
        [docker_compose, "config"],
        cwd=ROOT,
        env=None if environment is None else dict(environment),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    config: dict[str, object] = yaml.safe_load(result.stdout)
    return config


def test_compose_file_passes_docker_compose_config() -> None:
    docker_compose = shutil.which("docker-compose")
    assert docker_compose is not None, "docker-compose is not installed"

    result = subprocess.run(
        [docker_compose, "config", "-q"], cwd=ROOT, capture_output=True, text=True, check=False
    )

    assert (result.returncode, result.stderr) == (0, "")


def test_every_service_waits_for_its_migrations_and_has_a_health_check() -> None:
    services = _config()["services"]
    assert isinstance(services, dict)

    for name in SERVICES:
        service = services[name]
        assert service["depends_on"][f"{name}-migrate"] == {
            "condition": "service_completed_successfully"
        }
        assert "/ready" in " ".join(service["healthcheck"]["test"])
        migrate = services[f"{name}-migrate"]
        assert migrate["command"] == ["alembic", "upgrade", "head"]
        assert migrate["depends_on"]["postgres"] == {"condition": "service_healthy"}


def test_gateway_starts_after_every_service_is_healthy_and_is_the_only_published_port() -> None:
    services = _config()["services"]
    assert isinstance(services, dict)

    gateway = services["gateway"]
    assert {name: dep["condition"] for name, dep in gateway["depends_on"].items()} == {
        name: "service_healthy" for name in SERVICES
    }
    published = [name for name, service in services.items() if service.get("ports")]
    assert published == ["gateway"]


def _without_otel_variables() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if not name.startswith("OTEL_")}


def test_each_service_passes_the_tracing_variables_through_under_its_own_name() -> None:
    # A caller's OTEL_SERVICE_NAME must not name all four services alike.
    environment = _without_otel_variables() | TRACING | {"OTEL_SERVICE_NAME": "the-whole-fleet"}

    services = _config(environment)["services"]
    assert isinstance(services, dict)

    for name in SERVICES:
        passed = {key: services[name]["environment"].get(key) for key in TRACING}
        assert passed == TRACING, name
        assert services[name]["environment"]["OTEL_SERVICE_NAME"] == name


def test_the_tracing_variables_stay_unset_when_the_environment_has_none() -> None:
    services = _config(_without_otel_variables())["services"]
    assert isinstance(services, dict)

    for name in SERVICES:
        environment = services[name]["environment"]
        # No value in the file and none in the environment: none in the container (docker-compose
        # 1.x shows such a variable as null, Compose v2 leaves it out).
        assert {key: environment.get(key) for key in TRACING} == dict.fromkeys(TRACING), name
        assert environment["OTEL_SERVICE_NAME"] == name
