"""The Deployment matches the image: its port, and a grace period that covers a drain."""

from __future__ import annotations

import re
from typing import Any

from common_libs.testing.repository import PROBE_KINDS, container_port, only_container

from support.artifacts import REPOSITORY

_NGINX_TIME = re.compile(r"(\d+)(ms|s|m|h)?")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


def _container() -> dict[str, Any]:
    return only_container(REPOSITORY.resource("Deployment"))


def _listen(value: str) -> tuple[str, int]:
    """Host and port of a GATEWAY_LISTEN value (``host:port``, or a port alone: every address)."""
    host, _, port = value.rpartition(":")
    # A bare port listens on every address.
    return host or "0.0.0.0", int(port)


def _seconds(nginx_time: str) -> float:
    """Seconds of an nginx time value such as ``30s`` or ``5m`` (no unit: seconds)."""
    match = _NGINX_TIME.fullmatch(nginx_time)
    assert match is not None, f"unsupported nginx time {nginx_time!r}"
    return int(match.group(1)) * _SECONDS[match.group(2) or "s"]


def test_container_port_is_the_port_in_gateway_listen() -> None:
    container = _container()
    # What the pod gets: the image's ENV, overridden by the manifests.
    pod_listen = _listen(
        (REPOSITORY.image_environment() | REPOSITORY.container_environment(container))[
            "GATEWAY_LISTEN"
        ]
    )
    image_listen = _listen(REPOSITORY.image_environment()["GATEWAY_LISTEN"])
    port = pod_listen[1]

    # All interfaces: the kubelet's probes and the Service reach the pod's IP address.
    assert pod_listen == image_listen == ("0.0.0.0", port)
    assert [item["containerPort"] for item in container["ports"]] == [port]
    assert REPOSITORY.instruction_values("EXPOSE") == [str(port)]
    for kind in PROBE_KINDS:
        assert container_port(container, container[kind]["httpGet"]["port"]) == port
    for service_port in REPOSITORY.resource("Service")["spec"]["ports"]:
        assert container_port(container, service_port["targetPort"]) == port


def test_termination_grace_period_outlasts_the_pause_and_a_proxied_request() -> None:
    container = _container()
    pre_stop = container["lifecycle"]["preStop"]
    settings = REPOSITORY.image_environment() | REPOSITORY.container_environment(container)

    pause = pre_stop["sleep"]["seconds"] if "sleep" in pre_stop else 0
    # Stopped with SIGQUIT, nginx finishes the requests in flight; a request waiting on a service
    # has its answer, or a 504, within GATEWAY_READ_TIMEOUT (chat streams may be cut).
    read_timeout = _seconds(settings["GATEWAY_READ_TIMEOUT"])
    grace = REPOSITORY.resource("Deployment")["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"
    ]
    assert grace > pause + read_timeout, (
        f"SIGKILL after {grace} s would cut a {pause} s pause plus {read_timeout:g} s of a request"
    )
