"""Repository reads the artifacts as Kubernetes and Docker would see them."""

from __future__ import annotations

import pytest

from common_libs.testing.local_image import local_image_environment
from common_libs.testing.repository import (
    Repository,
    container_port,
    only_container,
    option,
    secret_mount,
    with_option,
)


def test_container_environment_resolves_config_maps_and_values(repository: Repository) -> None:
    container = only_container(repository.resource("Deployment", "demo-service"))

    environment = repository.container_environment(container)

    tracing = {
        "OTEL_SERVICE_NAME": "demo-service",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.observability.svc.cluster.local:4318",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
    }
    # The same ConfigMap twice: under the service's prefix, then as it is (the SDK's variables).
    settings = {"ENVIRONMENT": "production", "LOG_LEVEL": "info", **tracing}
    assert environment == {
        **{f"DEMO_{name}": value for name, value in settings.items()},
        **settings,
        "FORWARDED_ALLOW_IPS": "*",
    }


def test_a_variable_from_a_secret_is_an_error(repository: Repository) -> None:
    reference = {"secretKeyRef": {"name": "demo-secrets", "key": "DEMO_DATABASE_URL"}}
    container = {"env": [{"name": "DEMO_DATABASE_URL", "valueFrom": reference}]}

    with pytest.raises(AssertionError, match="mount the Secret as files instead"):
        repository.container_environment(container)


def test_the_overlays_are_found_by_their_kustomizations(repository: Repository) -> None:
    (repository.overlays_dir / "notes").mkdir()

    assert repository.overlay_names() == ["dev", "prod", "staging"]
    assert repository.deployment_dir == repository.root / "deployment" / "base"


def test_the_secret_mount_is_found_and_there_is_one_at_most(repository: Repository) -> None:
    deployment = repository.resource("Deployment")
    container = only_container(deployment)

    assert secret_mount(deployment, container) == {
        "name": "secrets",
        "mountPath": "/run/secrets",
        "readOnly": True,
    }
    assert secret_mount(deployment, {"name": "bare"}) is None
    twice = {"name": "twice", "volumeMounts": [container["volumeMounts"][0]] * 2}
    with pytest.raises(AssertionError, match="twice mounts 2 Secret volumes"):
        secret_mount(deployment, twice)


def test_an_unsupported_value_source_is_an_error(repository: Repository) -> None:
    container = {"env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}]}

    with pytest.raises(AssertionError, match="unsupported valueFrom"):
        repository.container_environment(container)


def test_resource_lookup_expects_exactly_one_match(repository: Repository) -> None:
    with pytest.raises(AssertionError, match="expected one Secret"):
        repository.resource("Secret")


def test_image_environment_unescapes_dollars_and_maps_the_venv_to_this_one(
    repository: Repository,
) -> None:
    image = repository.image_environment()
    local = local_image_environment(repository)

    assert image["GREETING"] == "costs $5"
    assert image["PATH"].startswith("/opt/venv/bin:/usr/local/bin:")
    assert local["PATH"].split(":")[1:] == image["PATH"].split(":")[1:]
    assert not local["PATH"].startswith("/opt/venv")


def test_command_options_are_read_and_replaced(repository: Repository) -> None:
    command = repository.image_command()

    assert option(command, "--port") == "8000"
    assert option(with_option(command, "--port", "9"), "--port") == "9"
    assert repository.instruction_values("USER") == ["10001:10001"]


def test_ports_are_numbers_or_names_of_the_container(repository: Repository) -> None:
    container = only_container(repository.resource("Deployment"))

    assert container_port(container, 8000) == 8000
    assert container_port(container, "http") == 8000
    with pytest.raises(AssertionError, match="no port named metrics"):
        container_port(container, "metrics")


def test_the_workflow_is_found_where_an_exported_repository_keeps_it(
    repository: Repository,
) -> None:
    exported = repository.root / ".github" / "workflows" / "ci-cd.yml"
    exported.parent.mkdir(parents=True)
    repository.workflow_path().rename(exported)

    assert repository.workflow_path() == exported
    exported.unlink()
    with pytest.raises(FileNotFoundError, match="no workflow"):
        repository.workflow_path()


def test_a_shell_form_cmd_is_refused(repository: Repository) -> None:
    text = repository.dockerfile.read_text()
    start = text.index("CMD [")
    repository.dockerfile.write_text(text[:start] + "CMD uvicorn app:create_app\n")

    with pytest.raises(AssertionError, match="exec form"):
        Repository.at(repository.root).image_command()
