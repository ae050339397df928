"""Each check fails on a repository that breaks its rule, and says what is wrong."""

from __future__ import annotations

import re
from pathlib import Path

import kubernetes_validate
import pytest
from fastapi import FastAPI

from common_libs.testing import checks, local_image, service_checks, tracing_checks, workflow
from common_libs.testing.repository import Repository


def edit(path: Path, old: str, new: str) -> None:
    """Replace the one ``old`` of a file with ``new``."""
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not once in {path}"
    path.write_text(text.replace(old, new))


def fresh(repository: Repository) -> Repository:
    """The same repository read again (the artifacts are parsed once per instance)."""
    return Repository.at(repository.root)


def test_hadolint_check_fails_on_an_unpinned_base_image(repository: Repository) -> None:
    edit(repository.dockerfile, "FROM python:3.11-slim-bookworm AS build", "FROM python AS build")

    with pytest.raises(AssertionError, match="DL3006"):
        checks.check_dockerfile_passes_hadolint(fresh(repository))


def test_kustomization_check_fails_on_a_manifest_it_leaves_out(repository: Repository) -> None:
    (repository.deployment_dir / "extra.yaml").write_text("kind: ConfigMap\n")

    with pytest.raises(AssertionError, match="kubectl apply -k would leave out"):
        checks.check_kustomization_lists_every_manifest(fresh(repository))


def test_manifest_check_fails_on_a_misspelt_field(repository: Repository) -> None:
    edit(repository.deployment_dir / "configmap.yaml", "\ndata:", "\ndta:")

    with pytest.raises(kubernetes_validate.ValidationError):
        checks.check_manifest_is_valid(fresh(repository), file_name="configmap.yaml")


def test_actionlint_check_fails_on_an_unknown_job_key(repository: Repository) -> None:
    edit(repository.workflow_path(), "    timeout-minutes: 15\n", "    timeout-minutez: 15\n")

    with pytest.raises(AssertionError, match="timeout-minutez"):
        checks.check_workflow_passes_actionlint(fresh(repository))


def test_probe_check_fails_on_a_path_the_app_does_not_route(repository: Repository) -> None:
    edit(repository.deployment_dir / "deployment.yaml", "path: /ready", "path: /readyz")

    app = FastAPI()
    app.add_api_route("/health", lambda: {"status": "ok"})
    app.add_api_route("/ready", lambda: {"status": "ok"})

    with pytest.raises(AssertionError, match="/readyz is not served"):
        service_checks.check_probes_use_paths_the_app_serves(fresh(repository), app=app)


def test_port_check_fails_when_the_container_port_is_not_the_command_port(
    repository: Repository,
) -> None:
    edit(repository.deployment_dir / "deployment.yaml", "containerPort: 8000", "containerPort: 80")

    with pytest.raises(AssertionError):
        service_checks.check_container_port_is_the_command_port(fresh(repository))


def test_grace_check_fails_when_sigkill_would_cut_the_drain(repository: Repository) -> None:
    edit(
        repository.deployment_dir / "deployment.yaml",
        "terminationGracePeriodSeconds: 15",
        "terminationGracePeriodSeconds: 10",
    )

    with pytest.raises(AssertionError, match="SIGKILL after 10 s would cut a 5 s pause"):
        service_checks.check_grace_period_outlasts_the_shutdown(fresh(repository))


def test_image_command_check_fails_when_the_manifests_are_not_for_production(
    repository: Repository, tmp_path: Path
) -> None:
    edit(repository.deployment_dir / "configmap.yaml", "ENVIRONMENT: production", "ENVIRONMENT: x")

    with pytest.raises(AssertionError, match="failed"):
        local_image.check_image_command_serves(
            fresh(repository),
            secrets={"DEMO_DATABASE_URL": "postgresql://db.invalid/demo"},
            log_dir=tmp_path,
            environment_prefix="DEMO_",
        )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("readOnly: true", "readOnly: false", "the Secret is mounted writable"),
        ("mountPath: /run/secrets", "mountPath: /secrets", "at /secrets but reads /run/secrets"),
    ],
    ids=["writable", "elsewhere"],
)
def test_image_command_check_fails_when_the_secret_files_are_not_where_the_app_reads(
    repository: Repository, tmp_path: Path, old: str, new: str, message: str
) -> None:
    edit(repository.deployment_dir / "migration-job.yaml", old, new)

    with pytest.raises(AssertionError, match=re.escape(message)):
        local_image.check_image_command_serves(
            fresh(repository),
            secrets={"DEMO_DATABASE_URL": "postgresql://db.invalid/demo"},
            log_dir=tmp_path,
            environment_prefix="DEMO_",
        )


def test_secret_files_are_written_only_for_a_workload_that_mounts_a_secret(
    repository: Repository, tmp_path: Path
) -> None:
    job = repository.resource("Job")
    mounted = local_image.secret_files_environment(
        repository, job, secrets={"DEMO_DATABASE_URL": "url"}, folder=tmp_path / "mounted"
    )
    del job["spec"]["template"]["spec"]["volumes"]

    assert mounted == {"SECRETS_DIR": str(tmp_path / "mounted")}
    assert (tmp_path / "mounted" / "DEMO_DATABASE_URL").read_text() == "url"
    assert (
        local_image.secret_files_environment(
            repository, job, secrets={"DEMO_DATABASE_URL": "url"}, folder=tmp_path / "none"
        )
        == {}
    )
    assert not (tmp_path / "none").exists()


def test_image_command_needs_its_programs_from_this_venv() -> None:
    with pytest.raises(AssertionError, match="does not come from the venv"):
        local_image.resolve(["sh", "-c", "true"], {"PATH": "/usr/bin:/bin"})


def test_workflow_check_fails_on_a_hand_edited_workflow(repository: Repository) -> None:
    edit(repository.workflow_path(), "timeout-minutes: 15", "timeout-minutes: 16")

    with pytest.raises(AssertionError, match=r"workflow demo-service > cicd/ci-cd\.yml"):
        workflow.check_workflow_is_the_rendered_template(fresh(repository))


@pytest.mark.parametrize(
    ("file_name", "old", "new", "message"),
    [
        (
            "configmap.yaml",
            '  OTEL_TRACES_SAMPLER_ARG: "0.1"\n',
            "",
            "the ConfigMap lacks {'OTEL_TRACES_SAMPLER_ARG'}",
        ),
        (
            "deployment.yaml",
            "            - name: FORWARDED_ALLOW_IPS\n",
            "            - name: OTEL_SERVICE_NAME\n              value: demo-service\n"
            "            - name: FORWARDED_ALLOW_IPS\n",
            "belong in the ConfigMap alone",
        ),
        (
            "configmap.yaml",
            "OTEL_SERVICE_NAME: demo-service",
            "OTEL_SERVICE_NAME: python",
            "the spans are named 'python'",
        ),
        (
            "configmap.yaml",
            "http://otel-collector.observability.svc.cluster.local:4318",
            "http://collector.example.com:4318",
            "is no in-cluster Service address",
        ),
        (
            "configmap.yaml",
            "observability.svc.cluster.local:4318",
            "observability.svc.cluster.local:4318/v1/traces",
            "appends /v1/traces",
        ),
        (
            "networkpolicy.yaml",
            "kubernetes.io/metadata.name: observability",
            "kubernetes.io/metadata.name: monitoring",
            "no egress rule admits TCP 4318 to the namespace observability",
        ),
    ],
    ids=["setting-missing", "set-per-container", "misnamed", "outside", "path", "not-admitted"],
)
def test_tracing_check_fails_on_manifests_that_do_not_let_the_spans_out(
    repository: Repository, file_name: str, old: str, new: str, message: str
) -> None:
    edit(repository.deployment_dir / file_name, old, new)

    with pytest.raises(AssertionError, match=re.escape(message)):
        tracing_checks.check_manifests_configure_tracing(fresh(repository))
