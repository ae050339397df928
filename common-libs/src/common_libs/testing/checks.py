"""The checks every repository of the fleet runs on its Dockerfile, manifests and workflow, offline.

Each ``check_*`` function raises ``AssertionError`` (or the validator's own error) when its rule is
broken. :func:`repository_checks` lists them for one repository, ready for
``pytest.mark.parametrize("check", ..., ids=str)``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sysconfig
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import kubernetes_validate
import pytest

from common_libs.testing.findings import findings
from common_libs.testing.overlays import (
    ENVIRONMENTS,
    check_overlay,
    check_overlays_are_the_environments,
)
from common_libs.testing.repository import KUBERNETES_VERSION, Repository

__all__ = [
    "KUBERNETES_VERSION",
    "Check",
    "check_dockerfile_passes_hadolint",
    "check_kustomization_lists_every_manifest",
    "check_manifest_is_valid",
    "check_workflow_passes_actionlint",
    "repository_checks",
]

# The validators' executables, installed next to this interpreter by the testing extra.
VENV_BIN = Path(sysconfig.get_path("scripts"))


@dataclass(frozen=True)
class Check:
    """One named check; ``run`` gets the test's request, for the fixtures the check needs."""

    name: str
    run: Callable[[pytest.FixtureRequest], None]

    def __str__(self) -> str:
        return self.name

    def findings(self, request: pytest.FixtureRequest) -> list[str]:
        """Run the check: ``[]`` when the repository keeps the rule, else what is wrong."""
        return findings(lambda: self.run(request))


def check_dockerfile_passes_hadolint(repository: Repository) -> None:
    """hadolint finds no error and no warning in the Dockerfile."""
    hadolint = [str(VENV_BIN / "hadolint"), "--format", "json", "--failure-threshold", "warning"]
    # HOME is empty so that no personal hadolint configuration can silence a rule.
    with tempfile.TemporaryDirectory() as home:
        result = subprocess.run(  # noqa: S603 - this venv's hadolint on the repository's Dockerfile
            [*hadolint, str(repository.dockerfile)],
            cwd=repository.build_context,
            env={"HOME": home},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    findings = json.loads(result.stdout)
    assert [item for item in findings if item["level"] in {"error", "warning"}] == []
    assert result.returncode == 0, result.stderr


def check_kustomization_lists_every_manifest(repository: Repository) -> None:
    """The base's ``kustomization.yaml`` lists every manifest of its folder, each once."""
    folder = repository.deployment_dir
    listed = repository.listed_manifests()
    on_disk = {path.name for path in folder.glob("*.y*ml")} - {"kustomization.yaml"}

    assert repository.kustomization["kind"] == "Kustomization"
    assert len(listed) == len(set(listed)), "a file is listed twice"
    assert [name for name in listed if not (folder / name).is_file()] == []
    assert on_disk - set(listed) == set(), "manifests that kubectl apply -k would leave out"


def check_manifest_is_valid(repository: Repository, *, file_name: str) -> None:
    """Every resource of one manifest file is valid for Kubernetes, strictly."""
    documents = repository.resources_of(file_name)

    assert documents, f"{file_name} holds no resource"
    for document in documents:
        # Strict: a misspelt or misplaced field is an error, not silently dropped by the API.
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def check_workflow_passes_actionlint(repository: Repository) -> None:
    """actionlint reports nothing on the workflow, its shell scripts included."""
    # actionlint checks the `run:` scripts only when it finds shellcheck (Debian: shellcheck).
    shellcheck = shutil.which("shellcheck")
    assert shellcheck is not None, "shellcheck is not installed (make test installs it)"

    result = subprocess.run(  # noqa: S603 - this venv's actionlint on the repository's workflow
        [
            str(VENV_BIN / "actionlint"),
            *("-no-color", "-shellcheck", shellcheck),
            str(repository.workflow_path()),
        ],
        cwd=repository.root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout == ""
    assert result.returncode == 0, result.stderr


def _manifest_check(repository: Repository, file_name: str) -> Check:
    def run(_request: pytest.FixtureRequest) -> None:
        check_manifest_is_valid(repository, file_name=file_name)

    return Check(f"manifest-valid-{file_name}", run)


def _overlay_check(repository: Repository, name: str) -> Check:
    def run(_request: pytest.FixtureRequest) -> None:
        check_overlay(repository, name)

    return Check(f"overlay-{name}", run)


def repository_checks(repository: Repository) -> list[Check]:
    """The checks that apply to any repository of the fleet: one per manifest file of the base
    for validity, one per environment's overlay (common_libs.testing.overlays)."""
    manifests = [_manifest_check(repository, name) for name in repository.listed_manifests()]
    overlays = [_overlay_check(repository, name) for name in ENVIRONMENTS]
    return [
        Check("hadolint", lambda _request: check_dockerfile_passes_hadolint(repository)),
        Check(
            "kustomization-lists-every-manifest",
            lambda _request: check_kustomization_lists_every_manifest(repository),
        ),
        *manifests,
        Check(
            "overlays-are-the-environments",
            lambda _request: check_overlays_are_the_environments(repository),
        ),
        *overlays,
        Check("actionlint", lambda _request: check_workflow_passes_actionlint(repository)),
    ]
