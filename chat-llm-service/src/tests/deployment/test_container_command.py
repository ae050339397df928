"""The image's CMD starts the service with exactly the environment the manifests give it.

No Docker engine is needed: the CMD runs in this venv (the image's /opt/venv), with the image's
ENV, the Deployment's ConfigMap values and stand-ins for its Secret, after the migration Job's
command has run against a fresh database. Only the listen address changes (127.0.0.1 and a free
port instead of 0.0.0.0:8000).
"""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
from common_libs.testing import PostgresServer, create_database, free_port

from tests.deployment.artifacts import (
    PROBE_KINDS,
    container_environment,
    image_command,
    image_environment,
    only_container,
    resource,
    with_option,
)
from tests.deployment.local_container import run_to_completion, serving


def secret_stand_ins(database_url: str) -> dict[str, str]:
    """Stand-ins for every key of the Secret the manifests reference, valid in production."""
    return {
        "CHAT_DATABASE_URL": database_url,
        # Never used: starting needs no call to the LLM.
        "OPENAI_API_KEY": "sk-stand-in-for-the-image-test",
    }


def test_image_command_serves_health_and_ready_with_the_manifests_environment(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    secrets = secret_stand_ins(create_database(postgres_server, "chat_image_command"))
    job = only_container(resource("Job"))
    container = only_container(resource("Deployment"))
    environment = image_environment() | container_environment(container, secrets)
    port = free_port()
    argv = with_option(with_option(image_command(), "--host", "127.0.0.1"), "--port", str(port))
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "service.log"

    run_to_completion(job["command"], image_environment() | container_environment(job, secrets))
    with serving(
        argv, environment=environment, ready_url=base_url + "/ready", log_path=log_path
    ) as process:
        probe_paths = {container[kind]["httpGet"]["path"] for kind in PROBE_KINDS}
        answers = {
            path: httpx.get(base_url + path).status_code
            for path in sorted(probe_paths | {"/health", "/ready"})
        }
        # What the kubelet does after the preStop pause: SIGTERM, then uvicorn drains and exits.
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=30)

    assert environment["CHAT_ENVIRONMENT"] == "production"
    assert answers == dict.fromkeys(answers, 200)
    # uvicorn finishes the lifespan's shutdown, then exits by the signal it got (or with 0).
    assert exit_code in {0, -signal.SIGTERM}, log_path.read_text()
    assert "Application shutdown complete." in log_path.read_text()
