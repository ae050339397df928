"""The manifests configure tracing (API.md, "Telemetry") for this service and let its spans out.

The ``OTEL_*`` variables are the OpenTelemetry SDK's own, standard ones: the SDK reads them, the
service's settings (one prefix of its own) do not. The ConfigMap sets them, the Deployment gets
them through ``envFrom``, and the NetworkPolicy admits the pods to the collector they name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from common_libs.testing.repository import Repository, Resource, only_container

REPOSITORY = Repository.at(Path(__file__).resolve().parents[3])
# The collector's conventional OTLP/HTTP port, and what every service of the fleet exports with.
OTLP_HTTP_PORT = 4318
EXPORT_SETTINGS = {
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
    "OTEL_TRACES_SAMPLER_ARG": "0.1",
}


def _secret_keys(container: Resource) -> dict[str, str]:
    """A stand-in for every Secret key the container reads (their values do not matter here)."""
    return {
        variable["valueFrom"]["secretKeyRef"]["key"]: "stand-in"
        for variable in container.get("env", [])
        if "secretKeyRef" in variable.get("valueFrom", {})
    }


def _deployment_environment() -> dict[str, str]:
    container = only_container(REPOSITORY.resource("Deployment"))
    return REPOSITORY.container_environment(container, secrets=_secret_keys(container))


class Collector(NamedTuple):
    """Where the Deployment's spans go: an in-cluster Service ``<name>.<namespace>.svc...``."""

    scheme: str
    namespace: str
    port: int | None


def _collector() -> Collector:
    endpoint = urlsplit(_deployment_environment()["OTEL_EXPORTER_OTLP_ENDPOINT"])
    host = endpoint.hostname or ""
    assert host.endswith(".svc.cluster.local"), f"{host} is no in-cluster Service address"
    assert endpoint.path in {"", "/"}, "the SDK appends /v1/traces to the endpoint itself"
    return Collector(endpoint.scheme, host.split(".")[1], endpoint.port)


def _admits(rule: dict[str, Any], *, namespace: str, port: int) -> bool:
    """Whether an egress rule admits TCP ``port`` on the pods of ``namespace``."""
    peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}
    return peer in rule.get("to", []) and {"protocol": "TCP", "port": port} in rule.get("ports", [])


def test_the_deployment_names_its_spans_after_the_service() -> None:
    deployment = REPOSITORY.resource("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]

    name = _deployment_environment()["OTEL_SERVICE_NAME"]

    assert name == REPOSITORY.name
    assert name == deployment["metadata"]["name"] == labels["app.kubernetes.io/name"]


def test_the_deployment_exports_over_otlp_http_and_samples_a_tenth_of_new_traces() -> None:
    environment = _deployment_environment()

    assert {name: environment.get(name) for name in EXPORT_SETTINGS} == EXPORT_SETTINGS
    assert _collector().scheme == "http"
    assert _collector().port == OTLP_HTTP_PORT


def test_the_tracing_variables_are_set_in_the_config_map_alone() -> None:
    configured = REPOSITORY.resource("ConfigMap")["data"]
    container = only_container(REPOSITORY.resource("Deployment"))

    per_container = [item["name"] for item in container.get("env", [])]

    assert {"OTEL_SERVICE_NAME", "OTEL_EXPORTER_OTLP_ENDPOINT", *EXPORT_SETTINGS} <= set(configured)
    assert [name for name in per_container if name.startswith("OTEL_")] == []


def test_the_network_policy_lets_the_pods_reach_the_collector() -> None:
    collector = _collector()
    assert collector.port is not None
    policy = REPOSITORY.resource("NetworkPolicy")
    pod_labels = REPOSITORY.resource("Deployment")["spec"]["template"]["metadata"]["labels"]

    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert "Egress" in policy["spec"]["policyTypes"]
    assert any(
        _admits(rule, namespace=collector.namespace, port=collector.port)
        for rule in policy["spec"]["egress"]
    ), f"no egress rule admits {collector}"
