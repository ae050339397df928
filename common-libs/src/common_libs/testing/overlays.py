"""Each environment's overlay (``deployment/overlays/<name>/``), rendered by kustomize and checked.

``kubectl kustomize`` (kustomize built into kubectl) renders an overlay offline, exactly as
``kubectl apply -k`` would send it. Every rendered resource must be valid for Kubernetes, strictly,
and each environment keeps its rules:

- every one: every resource lands in one namespace (a component's too); no container gets a
  Secret through a variable (``env`` with ``secretKeyRef``, or ``envFrom`` with ``secretRef``):
  Secrets are mounted read-only as files; every workload's image is set by the overlay (not left
  at the base's placeholder name) and pinned by a tag or a digest, never ``latest``;
- ``dev``: one pod (``replicas: 1``), no autoscaler;
- ``staging`` and ``prod``: at least two pods at all times (a HorizontalPodAutoscaler with
  ``2 <= minReplicas <= maxReplicas`` owns the count, so the Deployment sets none) and a
  PodDisruptionBudget over the pods with ``minAvailable: 1`` or ``maxUnavailable: 1``;
- ``prod``: every image pinned by its digest (``@sha256:``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator

import kubernetes_validate
import yaml

from common_libs.testing.repository import (
    KUBERNETES_VERSION,
    WORKLOAD_KINDS,
    Repository,
    Resource,
)

__all__ = [
    "ENVIRONMENTS",
    "check_images_are_pinned",
    "check_overlay",
    "check_overlays_are_the_environments",
    "check_secrets_are_files",
    "check_single_pod",
    "check_stays_available",
    "kubectl",
    "render_overlay",
]

ENVIRONMENTS = ("dev", "staging", "prod")
MINIMUM_AVAILABLE_PODS = 2
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def kubectl() -> str:
    """The ``kubectl`` on PATH; its absence fails the check, loudly."""
    found = shutil.which("kubectl")
    assert found is not None, (
        "kubectl is not on PATH: the overlays are rendered with `kubectl kustomize` "
        "(kubectl 1.27 or newer, which has kustomize 5 built in); install kubectl"
    )
    return found


def render_overlay(repository: Repository, name: str) -> list[Resource]:
    """Every resource ``kubectl apply -k deployment/overlays/<name>`` would apply."""
    result = subprocess.run(  # noqa: S603 - kubectl renders the repository's own overlay
        [kubectl(), "kustomize", str(repository.overlays_dir / name)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize overlays/{name} failed:\n{result.stderr}"
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def _pod_specs(resources: list[Resource]) -> Iterator[tuple[str, Resource]]:
    """Each workload's name and pod spec (a CronJob's is one level deeper)."""
    for item in resources:
        if item["kind"] not in WORKLOAD_KINDS:
            continue
        spec = item["spec"]
        if item["kind"] == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        yield item["metadata"]["name"], spec["template"]["spec"]


def _containers(pod: Resource) -> list[Resource]:
    containers: list[Resource] = pod.get("initContainers", []) + pod["containers"]
    return containers


def check_secrets_are_files(resources: list[Resource]) -> None:
    """No container gets a Secret as a variable; every Secret volume is mounted read-only."""
    for workload, pod in _pod_specs(resources):
        secret_volumes = {item["name"] for item in pod.get("volumes", []) if "secret" in item}
        for container in _containers(pod):
            where = f"{workload}/{container['name']}"
            from_secrets = [
                variable["name"]
                for variable in container.get("env", [])
                if "secretKeyRef" in variable.get("valueFrom", {})
            ]
            assert from_secrets == [], f"{where} gets {from_secrets} from a Secret in env"
            assert not any("secretRef" in source for source in container.get("envFrom", [])), (
                f"{where} gets a whole Secret through envFrom"
            )
            writable = [
                mount["name"]
                for mount in container.get("volumeMounts", [])
                if mount["name"] in secret_volumes and mount.get("readOnly") is not True
            ]
            assert writable == [], f"{where} mounts a Secret writable"


def _image_pin(image: str) -> tuple[str, str]:
    """The tag and the digest of an image reference (either may be empty)."""
    name, _, digest = image.partition("@")
    tag = name.rsplit("/", 1)[-1].partition(":")[2]
    return tag, digest


def check_images_are_pinned(
    resources: list[Resource], *, placeholders: set[str], digest: bool
) -> None:
    """Every container's image is set (no base placeholder) and pinned: a tag, or a digest."""
    for workload, pod in _pod_specs(resources):
        for container in _containers(pod):
            image = container["image"]
            tag, pinned_digest = _image_pin(image)
            where = f"{workload}/{container['name']}"
            assert image not in placeholders, f"{where}: the overlay does not set {image}"
            assert pinned_digest == "" or _DIGEST.fullmatch(pinned_digest), (
                f"{where}: {image} has no sha256 digest"
            )
            assert tag not in {"", "latest"} or pinned_digest, f"{where}: {image} is not pinned"
            if digest:
                assert pinned_digest, f"{where}: {image} is not pinned by its digest"


def _deployments(resources: list[Resource]) -> list[Resource]:
    deployments = [item for item in resources if item["kind"] == "Deployment"]
    assert deployments, "the overlay deploys no Deployment"
    return deployments


def _autoscalers_of(resources: list[Resource], deployment: Resource) -> list[Resource]:
    return [
        item
        for item in resources
        if item["kind"] == "HorizontalPodAutoscaler"
        and item["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        and item["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    ]


def check_single_pod(resources: list[Resource]) -> None:
    """Each Deployment runs exactly one pod, with no autoscaler to change that."""
    for deployment in _deployments(resources):
        name = deployment["metadata"]["name"]
        assert deployment["spec"].get("replicas") == 1, f"{name} does not set replicas: 1"
        assert _autoscalers_of(resources, deployment) == [], f"{name} has an autoscaler"


def check_stays_available(resources: list[Resource]) -> None:
    """Each Deployment keeps two pods or more (its autoscaler's floor) through a disruption."""
    for deployment in _deployments(resources):
        name = deployment["metadata"]["name"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        autoscalers = _autoscalers_of(resources, deployment)
        assert len(autoscalers) == 1, f"{name} has {len(autoscalers)} autoscalers, not one"
        bounds = autoscalers[0]["spec"]
        low, high = bounds.get("minReplicas", 1), bounds["maxReplicas"]
        assert MINIMUM_AVAILABLE_PODS <= low <= high, f"{name} scales between {low} and {high}"
        # A count in the Deployment would reset the autoscaler's on every apply.
        assert "replicas" not in deployment["spec"], f"{name} sets replicas next to its autoscaler"
        budgets = [
            item["spec"]
            for item in resources
            if item["kind"] == "PodDisruptionBudget"
            and item["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert len(budgets) == 1, f"{name} has {len(budgets)} PodDisruptionBudgets, not one"
        assert budgets[0].get("minAvailable") == 1 or budgets[0].get("maxUnavailable") == 1, (
            f"{name}'s PodDisruptionBudget is not minAvailable 1 or maxUnavailable 1"
        )


def check_overlays_are_the_environments(repository: Repository) -> None:
    """``deployment/overlays/`` has exactly one overlay per environment of the fleet."""
    assert repository.overlay_names() == sorted(ENVIRONMENTS)


def check_overlay(repository: Repository, name: str) -> None:
    """One environment's overlay renders, is valid, and keeps that environment's rules."""
    resources = render_overlay(repository, name)
    placeholders = {
        container["image"]
        for _workload, pod in _pod_specs(repository.resources)
        for container in _containers(pod)
    }

    assert resources, f"overlays/{name} renders nothing"
    namespaces = {item["metadata"].get("namespace") for item in resources}
    spread = f"overlays/{name} puts its resources in the namespaces {namespaces}"
    assert len(namespaces) == 1, spread
    assert None not in namespaces, spread
    for item in resources:
        # Strict: a misspelt or misplaced field, from the base or from a patch, is an error.
        kubernetes_validate.validate(item, KUBERNETES_VERSION, strict=True)
    check_secrets_are_files(resources)
    check_images_are_pinned(resources, placeholders=placeholders, digest=name == "prod")
    if name == "dev":
        check_single_pod(resources)
    else:
        check_stays_available(resources)
