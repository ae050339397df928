"""order-processing-service's Dockerfile, manifests and workflow pass the fleet's checks.

common_libs.testing.service_checks holds the checks (each one test id here); the facts below are
the ones only this service knows.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from common_libs.testing.checks import Check
from common_libs.testing.repository import Repository
from common_libs.testing.service_checks import ServiceFacts, service_checks


def secret_stand_ins(database_url: str) -> dict[str, str]:
    """The Secret's keys: the database, and the client secret user-service issues tokens for."""
    return {
        "ORDERS_DATABASE_URL": database_url,
        "ORDERS_SERVICE_CLIENT_SECRET": "orders-client-secret-for-the-image-test",
    }


ORDERS = ServiceFacts(
    repository=Repository.at(Path(__file__).resolve().parents[3]),
    secret_stand_ins=secret_stand_ins,
    environment_prefix="ORDERS_",
)


@pytest.mark.parametrize("check", service_checks(ORDERS), ids=str)
def test_orders_repository_passes(check: Check, request: pytest.FixtureRequest) -> None:
    assert check.findings(request) == []
