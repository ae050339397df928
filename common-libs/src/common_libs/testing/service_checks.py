"""The repository checks of a service: the fleet's own checks plus the Deployment-to-image contract.

A service's suite lists them with :func:`service_checks` and runs each with the test's request::

    FACTS = ServiceFacts(repository=Repository.at(ROOT), environment_prefix="USERS_", ...)

    @pytest.mark.parametrize("check", service_checks(FACTS), ids=str)
    def test_repository_passes(check: Check, request: pytest.FixtureRequest) -> None:
        assert check.findings(request) == []

Fixtures the checks use: ``offline_app`` (the service's app, its lifespan not run), ``tmp_path``
and ``postgres_server`` (from this plugin).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import httpx
import pytest
from starlette.types import ASGIApp

from common_libs.testing.checks import Check, repository_checks
from common_libs.testing.local_image import check_image_command_serves
from common_libs.testing.postgres import create_database
from common_libs.testing.repository import (
    PROBE_KINDS,
    Repository,
    container_port,
    only_container,
    option,
)
from common_libs.testing.tracing_checks import check_manifests_configure_tracing
from common_libs.testing.workflow import check_workflow_is_the_rendered_template

__all__ = [
    "ServiceFacts",
    "check_container_port_is_the_command_port",
    "check_grace_period_outlasts_the_shutdown",
    "check_probes_use_paths_the_app_serves",
    "service_checks",
]


@dataclass(frozen=True, kw_only=True)
class ServiceFacts:
    """What the checks need to know about a service that its repository does not say."""

    repository: Repository
    #: The prefix of the service's settings (``USERS_``): the manifests set ``<prefix>ENVIRONMENT``.
    environment_prefix: str
    #: A database URL -> a value, valid in production, for every key of the Secret its pods
    #: mount (each becomes a file of the folder ``SECRETS_DIR`` names).
    secret_stand_ins: Callable[[str], Mapping[str, str]]
    #: The path whose 200 says that the image's command is ready for the checks.
    ready_path: str = "/health"


async def _statuses(app: ASGIApp, paths: Iterable[str]) -> dict[str, int]:
    # Only the app's routes answer: its lifespan does not run (no database, no clients).
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        return {path: (await client.get(path)).status_code for path in paths}


def check_probes_use_paths_the_app_serves(repository: Repository, *, app: ASGIApp) -> None:
    """Every kind of probe asks the command's port for a path the app routes."""
    container = only_container(repository.resource("Deployment"))
    port = int(option(repository.image_command(), "--port"))
    probes = {kind: container[kind]["httpGet"] for kind in PROBE_KINDS if kind in container}
    statuses = asyncio.run(_statuses(app, {probe["path"] for probe in probes.values()}))

    assert set(probes) == set(PROBE_KINDS), "every kind of probe is expected"
    for kind, probe in probes.items():
        # Routing alone decides 404 and 405 here; a /ready that needs the database answers 503,
        # which still shows that the path is served.
        assert statuses[probe["path"]] not in {404, 405}, f"{kind}: {probe['path']} is not served"
        assert container_port(container, probe["port"]) == port


def check_container_port_is_the_command_port(repository: Repository) -> None:
    """The container port, EXPOSE and the Service's target are the port the CMD listens on."""
    command = repository.image_command()
    container = only_container(repository.resource("Deployment"))
    port = int(option(command, "--port"))

    # All interfaces: the kubelet's probes and the Service reach the pod's IP address.
    assert option(command, "--host") == "0.0.0.0"  # noqa: S104
    assert [item["containerPort"] for item in container["ports"]] == [port]
    assert repository.instruction_values("EXPOSE") == [str(port)]
    for service_port in repository.resource("Service")["spec"]["ports"]:
        assert container_port(container, service_port["targetPort"]) == port


def check_grace_period_outlasts_the_shutdown(repository: Repository) -> None:
    """SIGKILL comes after the preStop pause and uvicorn's graceful shutdown, never during."""
    deployment = repository.resource("Deployment")
    pre_stop = only_container(deployment)["lifecycle"]["preStop"]

    pause = pre_stop["sleep"]["seconds"] if "sleep" in pre_stop else 0
    graceful = int(option(repository.image_command(), "--timeout-graceful-shutdown"))
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > pause + graceful, (
        f"SIGKILL after {grace} s would cut a {pause} s pause plus {graceful} s of draining"
    )


def _image_command_serves(facts: ServiceFacts, request: pytest.FixtureRequest) -> None:
    name = facts.repository.name.replace("-", "_") + "_image_command"
    database_url = create_database(request.getfixturevalue("postgres_server"), name)
    check_image_command_serves(
        facts.repository,
        secrets=facts.secret_stand_ins(database_url),
        log_dir=request.getfixturevalue("tmp_path"),
        environment_prefix=facts.environment_prefix,
        ready_path=facts.ready_path,
    )


def service_checks(facts: ServiceFacts) -> list[Check]:
    """Every repository check of a service, each named for its parametrised test id."""
    repository = facts.repository
    return [
        *repository_checks(repository),
        Check(
            "probes-use-paths-the-app-serves",
            lambda request: check_probes_use_paths_the_app_serves(
                repository, app=request.getfixturevalue("offline_app")
            ),
        ),
        Check(
            "container-port-is-the-command-port",
            lambda _request: check_container_port_is_the_command_port(repository),
        ),
        Check(
            "grace-period-outlasts-the-shutdown",
            lambda _request: check_grace_period_outlasts_the_shutdown(repository),
        ),
        Check(
            "manifests-configure-tracing",
            lambda _request: check_manifests_configure_tracing(repository),
        ),
        Check(
            "image-command-serves-with-the-manifests-environment",
            lambda request: _image_command_serves(facts, request),
        ),
        Check(
            "workflow-is-the-rendered-template",
            lambda _request: check_workflow_is_the_rendered_template(repository),
        ),
    ]
