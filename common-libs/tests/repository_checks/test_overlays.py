"""Each overlay is rendered by the real ``kubectl kustomize``, and a broken rule fails its check."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import kubernetes_validate
import pytest

from common_libs.testing import overlays
from common_libs.testing.repository import Repository, Resource

# The digest the demo repository's prod overlay pins (conftest.py).
DIGEST = "sha256:" + "ab" * 32


def edit(path: Path, old: str, new: str) -> None:
    """Replace the one ``old`` of a file with ``new``."""
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not once in {path}"
    path.write_text(text.replace(old, new))


def overlay(repository: Repository, name: str) -> Path:
    """An overlay's kustomization."""
    return repository.overlays_dir / name / "kustomization.yaml"


def add_patch(repository: Repository, name: str, patch: str) -> None:
    """Append a JSON patch of the Deployment to an overlay."""
    text = overlay(repository, name).read_text()
    overlay(repository, name).write_text(
        text
        + "patches:\n  - target:\n      kind: Deployment\n      name: demo-service\n"
        + "    patch: |-\n"
        + "".join(f"      {line}\n" for line in patch.strip().splitlines())
    )


def test_the_prod_overlay_renders_the_base_with_its_digest_and_availability(
    repository: Repository,
) -> None:
    rendered = overlays.render_overlay(repository, "prod")

    kinds = sorted(item["kind"] for item in rendered)
    (deployment,) = [item for item in rendered if item["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Job",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Service",
    ]
    assert container["image"] == f"ghcr.io/example-org/demo-service:0.1.0@{DIGEST}"
    assert {item["metadata"]["namespace"] for item in rendered} == {"fleet"}


def test_an_overlay_that_leaves_a_resource_outside_its_namespace_fails(
    repository: Repository,
) -> None:
    edit(overlay(repository, "staging"), "namespace: fleet\n", "")

    with pytest.raises(AssertionError, match="puts its resources in the namespaces"):
        overlays.check_overlay(repository, "staging")


def test_the_overlays_must_be_the_three_environments(repository: Repository) -> None:
    shutil.rmtree(repository.overlays_dir / "staging")

    with pytest.raises(AssertionError):
        overlays.check_overlays_are_the_environments(repository)


def test_an_overlay_kustomize_cannot_render_fails(repository: Repository) -> None:
    edit(overlay(repository, "dev"), "../../base", "../../nowhere")

    with pytest.raises(AssertionError, match="kubectl kustomize overlays/dev failed"):
        overlays.check_overlay(repository, "dev")


def test_a_missing_kubectl_fails_loudly(
    repository: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "")

    with pytest.raises(AssertionError, match="kubectl is not on PATH"):
        overlays.render_overlay(repository, "dev")


def test_a_patch_that_makes_a_resource_invalid_fails(repository: Repository) -> None:
    add_patch(repository, "staging", "- op: add\n  path: /spec/replicaz\n  value: 3")

    with pytest.raises(kubernetes_validate.ValidationError):
        overlays.check_overlay(repository, "staging")


SECRET_VARIABLE = """
- op: add
  path: /spec/template/spec/containers/0/env/-
  value:
    name: DEMO_TOKEN
    valueFrom:
      secretKeyRef:
        name: demo-secrets
        key: DEMO_TOKEN
"""
SECRET_ENV_FROM = """
- op: add
  path: /spec/template/spec/containers/0/envFrom/-
  value:
    secretRef:
      name: demo-secrets
"""
WRITABLE_MOUNT = """
- op: replace
  path: /spec/template/spec/containers/0/volumeMounts/0/readOnly
  value: false
"""


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (SECRET_VARIABLE, "demo-service/api gets ['DEMO_TOKEN'] from a Secret in env"),
        (SECRET_ENV_FROM, "demo-service/api gets a whole Secret through envFrom"),
        (WRITABLE_MOUNT, "demo-service/api mounts a Secret writable"),
    ],
    ids=["env", "env-from", "writable"],
)
def test_a_secret_that_is_not_a_read_only_file_fails(
    repository: Repository, patch: str, message: str
) -> None:
    add_patch(repository, "prod", patch)

    with pytest.raises(AssertionError, match=re.escape(message)):
        overlays.check_overlay(repository, "prod")


@pytest.mark.parametrize(
    ("name", "old", "new", "message"),
    [
        (
            "dev",
            "  - name: demo-service\n    newName",
            "  - name: other\n    newName",
            "does not set",
        ),
        ("staging", 'newTag: "0.1.0"', "newTag: latest", "is not pinned"),
        ("prod", f"    digest: {DIGEST}\n", "", "is not pinned by its digest"),
        ("prod", DIGEST, "sha256:abc", "has no sha256 digest"),
    ],
    ids=["placeholder", "latest", "prod-tag-only", "bad-digest"],
)
def test_an_image_the_overlay_does_not_pin_fails(
    repository: Repository, name: str, old: str, new: str, message: str
) -> None:
    edit(overlay(repository, name), old, new)

    with pytest.raises(AssertionError, match=re.escape(message)):
        overlays.check_overlay(repository, name)


def test_an_image_pinned_by_digest_alone_is_pinned() -> None:
    pod = {"containers": [{"name": "api", "image": f"registry:5000/demo@{DIGEST}"}]}
    job: Resource = {"kind": "Job", "metadata": {"name": "j"}, "spec": {"template": {"spec": pod}}}

    overlays.check_images_are_pinned([job], placeholders={"demo"}, digest=True)

    pod["containers"][0]["image"] = "registry:5000/demo"
    with pytest.raises(AssertionError, match="registry:5000/demo is not pinned"):
        overlays.check_images_are_pinned([job], placeholders={"demo"}, digest=False)


def test_a_cron_jobs_pods_are_checked_too() -> None:
    env = [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "s", "key": "T"}}}]
    pod = {"containers": [{"name": "tick", "image": "x:1", "env": env}]}
    cron_job: Resource = {
        "kind": "CronJob",
        "metadata": {"name": "nightly"},
        "spec": {"jobTemplate": {"spec": {"template": {"spec": pod}}}},
    }

    with pytest.raises(AssertionError, match="nightly/tick gets"):
        overlays.check_secrets_are_files([cron_job])


@pytest.mark.parametrize(
    ("name", "old", "new", "message"),
    [
        ("dev", "count: 1", "count: 2", "demo-service does not set replicas: 1"),
        (
            "dev",
            "replicas:\n",
            "components:\n  - ../../components/availability\nreplicas:\n",
            "demo-service has an autoscaler",
        ),
        (
            "staging",
            "components:\n  - ../../components/availability\n",
            "",
            "demo-service has 0 autoscalers, not one",
        ),
        (
            "prod",
            "resources:\n",
            "replicas:\n  - name: demo-service\n    count: 3\nresources:\n",
            "demo-service sets replicas next to its autoscaler",
        ),
    ],
    ids=["dev-two-pods", "dev-autoscaled", "staging-no-autoscaler", "prod-fixed-count"],
)
def test_an_overlay_with_the_wrong_pod_count_fails(
    repository: Repository, name: str, old: str, new: str, message: str
) -> None:
    edit(overlay(repository, name), old, new)

    with pytest.raises(AssertionError, match=re.escape(message)):
        overlays.check_overlay(repository, name)


@pytest.mark.parametrize(
    ("file_name", "old", "new", "message"),
    [
        ("hpa.yaml", "minReplicas: 2", "minReplicas: 1", "demo-service scales between 1 and 4"),
        ("hpa.yaml", "maxReplicas: 4", "maxReplicas: 1", "demo-service scales between 2 and 1"),
        ("pdb.yaml", "maxUnavailable: 1", "maxUnavailable: 2", "not minAvailable 1"),
        ("pdb.yaml", "app: demo-service", "app: another", "has 0 PodDisruptionBudgets"),
    ],
    ids=["one-pod-floor", "inverted-bounds", "budget-too-loose", "budget-elsewhere"],
)
def test_an_availability_rule_broken_in_the_component_fails_prod(
    repository: Repository, file_name: str, old: str, new: str, message: str
) -> None:
    component = repository.root / "deployment" / "components" / "availability"
    edit(component / file_name, old, new)

    with pytest.raises(AssertionError, match=re.escape(message)):
        overlays.check_overlay(repository, "prod")


def test_a_budget_by_min_available_keeps_prod_available(repository: Repository) -> None:
    component = repository.root / "deployment" / "components" / "availability"
    edit(component / "pdb.yaml", "maxUnavailable: 1", "minAvailable: 1")

    overlays.check_overlay(repository, "prod")

    rendered = overlays.render_overlay(repository, "prod")
    (budget,) = [item for item in rendered if item["kind"] == "PodDisruptionBudget"]
    assert budget["spec"] == {
        "minAvailable": 1,
        "selector": {"matchLabels": {"app": "demo-service"}},
    }


def test_an_overlay_without_a_deployment_fails() -> None:
    with pytest.raises(AssertionError, match="the overlay deploys no Deployment"):
        overlays.check_single_pod([{"kind": "ConfigMap", "metadata": {"name": "c"}}])
