"""Every manifest of deployment/ is listed by kustomization.yaml and valid for Kubernetes."""

from __future__ import annotations

import kubernetes_validate
import pytest

from support.artifacts import (
    DEPLOYMENT_DIR,
    kustomization,
    listed_manifests,
    resources,
    resources_of,
)

# The cluster version the manifests are written for (schemas bundled by kubernetes-validate).
KUBERNETES_VERSION = "1.35.0"
WORKLOAD_KINDS = {"Deployment", "Job", "StatefulSet", "DaemonSet", "CronJob"}


def test_kustomization_lists_every_manifest_of_the_folder() -> None:
    listed = listed_manifests()
    on_disk = {path.name for path in DEPLOYMENT_DIR.glob("*.y*ml")} - {"kustomization.yaml"}

    assert kustomization()["kind"] == "Kustomization"
    assert len(listed) == len(set(listed)), "a file is listed twice"
    assert [name for name in listed if not (DEPLOYMENT_DIR / name).is_file()] == []
    assert on_disk - set(listed) == set(), "manifests that kubectl apply -k would leave out"


@pytest.mark.parametrize("file_name", listed_manifests())
def test_manifest_is_valid_for_kubernetes(file_name: str) -> None:
    documents = resources_of(file_name)

    assert documents, f"{file_name} holds no resource"
    for document in documents:
        # Strict: a misspelt or misplaced field is an error, not silently dropped by the API.
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_kustomize_sets_the_image_of_every_workload() -> None:
    image_names = {image["name"] for image in kustomization()["images"]}
    workloads = [item for item in resources() if item["kind"] in WORKLOAD_KINDS]

    assert workloads
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            assert container["image"] in image_names, (
                f"{workload['metadata']['name']}: {container['image']} is not set by kustomize"
            )
