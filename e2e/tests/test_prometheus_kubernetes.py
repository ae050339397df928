"""The fleet's Prometheus set-up in a cluster (observability/kubernetes/, the README): the pods'
scrape annotations, the ServiceMonitor, the pods' scrape job, the NetworkPolicies and the
PrometheusRule agree with each service's manifests and with the SLO rules."""

from __future__ import annotations

from typing import Any

import fleet as runner
import slo_rules
import yaml

from tests.fleet import ROOT

KUBERNETES = ROOT / "observability" / "kubernetes"
ANNOTATIONS = ("prometheus.io/scrape", "prometheus.io/port", "prometheus.io/path")


def _manifest(folder: str, file_name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(
        (ROOT / folder / "deployment" / "base" / file_name).read_text()
    )
    return loaded


def _http_port(folder: str) -> int:
    (container,) = _manifest(folder, "deployment.yaml")["spec"]["template"]["spec"]["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    return int(ports["http"])


def test_each_services_pods_ask_to_be_scraped_on_their_container_port() -> None:
    for service in runner.SERVICES:
        template = _manifest(service.name, "deployment.yaml")["spec"]["template"]

        assert template["metadata"]["annotations"] == {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(_http_port(service.name)),
            "prometheus.io/path": "/metrics",
        }, service.name


def test_each_services_network_policy_admits_prometheus_to_that_port() -> None:
    prometheus = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
    }
    for service in runner.SERVICES:
        ingress = _manifest(service.name, "networkpolicy.yaml")["spec"]["ingress"]

        assert {
            "from": [prometheus],
            "ports": [{"protocol": "TCP", "port": _http_port(service.name)}],
        } in ingress, service.name


def test_the_service_monitor_selects_the_four_services_and_their_http_port() -> None:
    monitor = yaml.safe_load((KUBERNETES / "servicemonitor.yaml").read_text())
    selector = monitor["spec"]["selector"]["matchLabels"]
    (endpoint,) = monitor["spec"]["endpoints"]

    selected = []
    for folder in [*(service.name for service in runner.SERVICES), "api-gateway-service"]:
        service = _manifest(folder, "service.yaml")
        if selector.items() <= service["metadata"]["labels"].items():
            selected.append(folder)
            assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
            # The Operator's service label is the Service's name: the SLO rules' service.
            assert service["metadata"]["name"] == folder
    assert selected == [service.name for service in runner.SERVICES]
    assert endpoint["path"] == "/metrics"


def test_the_pods_scrape_job_reads_the_annotations_and_labels_the_service() -> None:
    config = yaml.safe_load((KUBERNETES / "prometheus-pods.yml").read_text())
    (job,) = config["scrape_configs"]
    relabelling = job["relabel_configs"]

    read = {
        label.removeprefix("__meta_kubernetes_pod_annotation_")
        for rule in relabelling
        for label in rule.get("source_labels", [])
        if label.startswith("__meta_kubernetes_pod_annotation_")
    }
    # Kubernetes discovery writes an annotation's name with "_" for every "." and "/".
    assert read == {name.replace(".", "_").replace("/", "_") for name in ANNOTATIONS}
    (service_rule,) = [rule for rule in relabelling if rule.get("target_label") == "service"]
    pod_label = service_rule["source_labels"][0].removeprefix("__meta_kubernetes_pod_label_")
    for service in runner.SERVICES:
        metadata = _manifest(service.name, "deployment.yaml")["spec"]["template"]["metadata"]
        assert metadata["labels"]["app.kubernetes.io/name"] == service.name
    assert pod_label == "app_kubernetes_io_name"
    for rule_file in config["rule_files"]:
        assert (KUBERNETES / rule_file).resolve() == slo_rules.RULES_PATH


def test_the_prometheus_rule_holds_the_rules_files_groups() -> None:
    resource = yaml.safe_load(slo_rules.render_prometheus_rule(slo_rules.load_objectives()))
    rules_file = yaml.safe_load(slo_rules.RULES_PATH.read_text())

    assert resource["kind"] == "PrometheusRule"
    assert resource["spec"]["groups"] == rules_file["groups"]
