"""Every check of the kit passes on a sound service repository, each as its own test."""

from __future__ import annotations

import pytest

from common_libs.testing.repository import Repository
from common_libs.testing.service_checks import ServiceFacts, service_checks

CHECKS = [
    "hadolint",
    "kustomization-lists-every-manifest",
    "manifest-valid-configmap.yaml",
    "manifest-valid-service.yaml",
    "manifest-valid-migration-job.yaml",
    "manifest-valid-deployment.yaml",
    "manifest-valid-networkpolicy.yaml",
    "overlays-are-the-environments",
    "overlay-dev",
    "overlay-staging",
    "overlay-prod",
    "actionlint",
    "probes-use-paths-the-app-serves",
    "container-port-is-the-command-port",
    "grace-period-outlasts-the-shutdown",
    "manifests-configure-tracing",
    "image-command-serves-with-the-manifests-environment",
    "workflow-is-the-rendered-template",
]


def facts(repository: Repository) -> ServiceFacts:
    """The demo service's facts: its settings prefix and its Secret's one file."""
    return ServiceFacts(
        repository=repository,
        environment_prefix="DEMO_",
        secret_stand_ins=lambda database_url: {"DEMO_DATABASE_URL": database_url},
        ready_path="/ready",
    )


def test_service_checks_are_the_fleet_checks_then_the_image_contract(
    repository: Repository,
) -> None:
    assert [str(check) for check in service_checks(facts(repository))] == CHECKS


@pytest.mark.parametrize("name", CHECKS)
def test_check_passes_on_a_sound_repository(
    name: str, repository: Repository, request: pytest.FixtureRequest
) -> None:
    (check,) = [check for check in service_checks(facts(repository)) if check.name == name]

    assert check.findings(request) == []
