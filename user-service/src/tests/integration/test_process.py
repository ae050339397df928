"""The service runs as a real uvicorn process configured only through its environment."""

from __future__ import annotations

from pathlib import Path

from common_libs.testing.app_checks import check_process_serves_health_and_ready
from common_libs.testing.findings import findings

from tests.conftest import NO_BROKER_URL
from tests.integration.conftest import SERVICE_ROOT


def test_uvicorn_process_serves_health_and_ready(database_url: str, tmp_path: Path) -> None:
    found = findings(
        lambda: check_process_serves_health_and_ready(
            service="user-service",
            env={
                "USERS_DATABASE_URL": database_url,
                # Not the default broker (a developer's NATS): its relay would publish there the
                # events of the session's database.
                "NATS_URL": NO_BROKER_URL,
                "USERS_ENVIRONMENT": "test",
                "USERS_SIGNING_KEY_FILE": str(tmp_path / "keys" / "signing-key.pem"),
            },
            cwd=SERVICE_ROOT,
            log_path=tmp_path / "service.log",
        )
    )

    assert found == []
