"""The catalog's Dockerfile, manifests and workflow pass the fleet's repository checks.

The checks are common-libs' (common_libs.testing.service_checks lists them, one test id each);
this module only says what the repository cannot: the settings prefix and the Secret's keys.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from common_libs.testing.checks import Check
from common_libs.testing.repository import Repository
from common_libs.testing.service_checks import ServiceFacts, service_checks

CATALOG = ServiceFacts(
    repository=Repository.at(Path(__file__).resolve().parents[3]),
    environment_prefix="CATALOG_",
    # The Secret holds the database URL alone.
    secret_stand_ins=lambda database_url: {"CATALOG_DATABASE_URL": database_url},
)


@pytest.mark.parametrize("check", service_checks(CATALOG), ids=str)
def test_catalog_repository_passes(check: Check, request: pytest.FixtureRequest) -> None:
    assert check.findings(request) == []
