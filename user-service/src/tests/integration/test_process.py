"""The service runs as a real uvicorn process configured only through its environment."""

from __future__ import annotations

import sys
from importlib.metadata import version
from pathlib import Path

import httpx
from common_libs.testing import ServerProcess, free_port

from tests.integration.conftest import SERVICE_ROOT


def test_uvicorn_process_serves_health_and_ready(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory"]
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    env = {
        "USERS_DATABASE_URL": database_url,
        "USERS_ENVIRONMENT": "test",
        "USERS_SIGNING_KEY_FILE": str(tmp_path / "keys" / "signing-key.pem"),
    }
    base = f"http://127.0.0.1:{port}"

    with ServerProcess(
        argv,
        env=env,
        cwd=SERVICE_ROOT,
        log_path=tmp_path / "service.log",
        ready_url=base + "/health",
    ) as server:
        health = httpx.get(base + "/health", headers={"X-Request-ID": "proc-check-1"})
        ready = httpx.get(base + "/ready")

    assert health.json()["version"] == version("user-service")
    assert health.headers["x-request-id"] == "proc-check-1"
    assert ready.status_code == 200
    assert '"request_id": "proc-check-1"' in server.output()
