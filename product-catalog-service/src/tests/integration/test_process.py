"""The service runs as a real uvicorn process configured only through its environment."""

from __future__ import annotations

from pathlib import Path

from common_libs.testing import NatsServer
from common_libs.testing.app_checks import check_process_serves_health_and_ready
from common_libs.testing.findings import findings

from tests.integration.conftest import SERVICE_ROOT


def test_uvicorn_process_serves_health_and_ready(
    database_url: str, nats_server: NatsServer, tmp_path: Path
) -> None:
    env = {
        "CATALOG_DATABASE_URL": database_url,
        "CATALOG_ENVIRONMENT": "test",
        "NATS_URL": nats_server.url,
    }
    found = findings(
        lambda: check_process_serves_health_and_ready(
            service="product-catalog-service",
            env=env,
            cwd=SERVICE_ROOT,
            log_path=tmp_path / "service.log",
        )
    )

    assert found == []
