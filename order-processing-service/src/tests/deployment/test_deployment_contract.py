"""The Deployment matches the image: probe paths, port, and a grace period that covers shutdown."""

from __future__ import annotations

from typing import Any

import httpx

from tests.deployment.artifacts import (
    PROBE_KINDS,
    image_command,
    instruction_values,
    only_container,
    option,
    resource,
)


def _container() -> dict[str, Any]:
    return only_container(resource("Deployment"))


def _container_port(container: dict[str, Any], port: int | str) -> int:
    """A probe's or Service's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    named = {item["name"]: item["containerPort"] for item in container["ports"] if "name" in item}
    assert port in named, f"the container has no port named {port}"
    return int(named[port])


async def test_probes_use_paths_the_app_serves(offline_client: httpx.AsyncClient) -> None:
    container = _container()
    port = int(option(image_command(), "--port"))

    probes = {name: container[name]["httpGet"] for name in PROBE_KINDS if name in container}

    assert set(probes) == set(PROBE_KINDS), "every kind of probe is expected"
    for name, probe in probes.items():
        # Routing alone decides 404 and 405 here: the app has no lifespan (no database), so
        # /ready answers 503, which still shows that the path is served.
        response = await offline_client.get(probe["path"])
        assert response.status_code not in {404, 405}, f"{name}: {probe['path']} is not served"
        assert _container_port(container, probe["port"]) == port


def test_container_port_is_the_port_the_image_command_listens_on() -> None:
    command = image_command()
    container = _container()
    service = resource("Service")

    port = int(option(command, "--port"))
    # All interfaces: the kubelet's probes and the Service reach the pod's IP address.
    assert option(command, "--host") == "0.0.0.0"  # noqa: S104
    assert [item["containerPort"] for item in container["ports"]] == [port]
    assert instruction_values("EXPOSE") == [str(port)]
    for service_port in service["spec"]["ports"]:
        assert _container_port(container, service_port["targetPort"]) == port


def test_termination_grace_period_outlasts_the_pause_and_the_graceful_shutdown() -> None:
    deployment = resource("Deployment")
    pre_stop = _container()["lifecycle"]["preStop"]

    pause = pre_stop["sleep"]["seconds"] if "sleep" in pre_stop else 0
    graceful = int(option(image_command(), "--timeout-graceful-shutdown"))
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > pause + graceful, (
        f"SIGKILL after {grace} s would cut a {pause} s pause plus {graceful} s of draining"
    )
