"""The manifests configure tracing (API.md, "Telemetry") for the service and let its spans out.

The ``OTEL_*`` variables are the OpenTelemetry SDK's own, standard ones: the SDK reads them, the
service's settings (one prefix of its own) do not. The ConfigMap sets them, the Deployment gets
them through ``envFrom`` (without a prefix), and the NetworkPolicy admits the pods to the
collector they name: an in-cluster Service ``<name>.<namespace>.svc.cluster.local`` on OTLP/HTTP.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from common_libs.testing.repository import Repository, only_container

__all__ = ["EXPORT_SETTINGS", "OTLP_HTTP_PORT", "check_manifests_configure_tracing"]

# The collector's conventional OTLP/HTTP port, and what every service of the fleet exports with.
OTLP_HTTP_PORT = 4318
EXPORT_SETTINGS = {
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
    "OTEL_TRACES_SAMPLER_ARG": "0.1",
}
_CONFIGURED = {"OTEL_SERVICE_NAME", "OTEL_EXPORTER_OTLP_ENDPOINT", *EXPORT_SETTINGS}


def _admits(rule: dict[str, Any], *, namespace: str, port: int) -> bool:
    """Whether an egress rule admits TCP ``port`` on the pods of ``namespace``."""
    peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}
    return peer in rule.get("to", []) and {"protocol": "TCP", "port": port} in rule.get("ports", [])


def check_manifests_configure_tracing(repository: Repository) -> None:
    """Spans named after the service, exported over OTLP/HTTP to an in-cluster collector with
    a tenth of new traces sampled, set in the ConfigMap alone, and let out by the NetworkPolicy."""
    deployment = repository.resource("Deployment")
    container = only_container(deployment)
    environment = repository.container_environment(container)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    configured = repository.resource("ConfigMap")["data"]

    assert set(configured) >= _CONFIGURED, f"the ConfigMap lacks {_CONFIGURED - set(configured)}"
    per_container = [item["name"] for item in container.get("env", [])]
    assert [name for name in per_container if name.startswith("OTEL_")] == [], (
        "the OTEL_* variables belong in the ConfigMap alone"
    )
    name = environment.get("OTEL_SERVICE_NAME")
    assert name == repository.name == deployment["metadata"]["name"], (
        f"the spans are named {name!r}, not after the service"
    )
    assert pod_labels.get("app.kubernetes.io/name") == name
    assert {key: environment.get(key) for key in EXPORT_SETTINGS} == EXPORT_SETTINGS

    endpoint = urlsplit(environment["OTEL_EXPORTER_OTLP_ENDPOINT"])
    host = endpoint.hostname or ""
    assert host.endswith(".svc.cluster.local"), f"{host!r} is no in-cluster Service address"
    assert endpoint.path in {"", "/"}, "the SDK appends /v1/traces to the endpoint itself"
    assert (endpoint.scheme, endpoint.port) == ("http", OTLP_HTTP_PORT)

    namespace = host.split(".")[1]
    policy = repository.resource("NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert "Egress" in policy["spec"]["policyTypes"]
    assert any(
        _admits(rule, namespace=namespace, port=OTLP_HTTP_PORT) for rule in policy["spec"]["egress"]
    ), f"no egress rule admits TCP {OTLP_HTTP_PORT} to the namespace {namespace}"
