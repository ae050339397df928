"""The Docker Compose file is valid and starts the fleet in dependency order (checked offline)."""

from __future__ import annotations

import shutil
import subprocess

import yaml

from tests.fleet import ROOT

SERVICES = (
    "user-service",
    "product-catalog-service",
    "order-processing-service",
    "chat-llm-service",
)


def _config() -> dict[str, object]:
    docker_compose = shutil.which("docker-compose")
    # make test installs Debian's docker-compose (it needs no Docker daemon to check a file).
    assert docker_compose is not None, "docker-compose is not installed"
    result = subprocess.run(
        [docker_compose, "config"], cwd=ROOT, capture_output=True, text=True, check=False
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
