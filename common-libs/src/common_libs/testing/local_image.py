"""A service image's commands run as local processes: no Docker engine is needed.

The running interpreter's venv stands in for the image's ``/opt/venv``, the build context (the
folder the image copies to its WORKDIR) is the working directory, and a process gets the image's
``ENV`` and the manifests' environment alone: nothing is inherited from the test run. The Secret
a pod mounts is a folder of stand-in files, which ``SECRETS_DIR`` names to the process (the pod
reads the mount at its default path, ``/run/secrets``).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import httpx

from common_libs.settings import DEFAULT_SECRETS_DIR, SECRETS_DIR_VARIABLE
from common_libs.testing.checks import VENV_BIN
from common_libs.testing.processes import ServerProcess, free_port
from common_libs.testing.repository import (
    PROBE_KINDS,
    Repository,
    Resource,
    only_container,
    secret_mount,
    with_option,
)

__all__ = [
    "IMAGE_VENV",
    "check_image_command_serves",
    "local_image_environment",
    "resolve",
    "secret_files_environment",
]

# The image's virtual environment (`python -m venv /opt/venv` in the fleet's Dockerfiles).
IMAGE_VENV = "/opt/venv"


def local_image_environment(repository: Repository) -> dict[str, str]:
    """The image's environment, its venv mapped to the one running these tests."""
    environment = repository.image_environment()
    environment["PATH"] = ":".join(
        sys.prefix + entry.removeprefix(IMAGE_VENV) if entry.startswith(IMAGE_VENV) else entry
        for entry in environment["PATH"].split(":")
    )
    return environment


def resolve(argv: list[str], environment: Mapping[str, str]) -> list[str]:
    """``argv`` with its program looked up on the environment's PATH, as the container would."""
    program = shutil.which(argv[0], path=environment["PATH"])
    assert program is not None, f"{argv[0]} is not on the image's PATH"
    assert Path(program).parent == VENV_BIN, f"{argv[0]} does not come from the venv: {program}"
    return [program, *argv[1:]]


def secret_files_environment(
    repository: Repository, workload: Resource, *, secrets: Mapping[str, str], folder: Path
) -> dict[str, str]:
    """The workload's mounted Secret as files of stand-ins in ``folder``, and ``SECRETS_DIR``.

    The mount must be read-only and where the service reads its secret files (``SECRETS_DIR``
    of the container's environment, else the default); without a Secret mount, nothing.
    """
    container = only_container(workload)
    mount = secret_mount(workload, container)
    if mount is None:
        return {}
    environment = repository.container_environment(container)
    reads = environment.get(SECRETS_DIR_VARIABLE, str(DEFAULT_SECRETS_DIR))
    assert mount.get("readOnly") is True, f"{container['name']}: the Secret is mounted writable"
    assert mount["mountPath"] == reads, (
        f"{container['name']} mounts its Secret at {mount['mountPath']} but reads {reads}"
    )
    folder.mkdir(parents=True, exist_ok=True)
    for key, value in secrets.items():
        (folder / key).write_text(value)
    return {SECRETS_DIR_VARIABLE: str(folder)}


def _run_to_completion(argv: list[str], *, environment: dict[str, str], cwd: Path) -> None:
    result = subprocess.run(  # noqa: S603 - a command of the repository's own manifests
        resolve(argv, environment),
        env=environment,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"{argv} failed:\n{result.stdout}{result.stderr}"


def check_image_command_serves(
    repository: Repository,
    *,
    secrets: Mapping[str, str],
    log_dir: Path,
    environment_prefix: str,
    ready_path: str = "/health",
) -> None:
    """The image's CMD serves every probe path with the manifests' environment, then drains.

    The migration Job's command runs first with its own environment; the CMD then runs with the
    Deployment's, listening on 127.0.0.1 and a free port instead of its own address. ``secrets``
    are the files of the Secret the pods mount (key: content).
    """
    job_workload = repository.resource("Job")
    deployment = repository.resource("Deployment")
    job = only_container(job_workload)
    container = only_container(deployment)
    image = local_image_environment(repository)
    environment = (
        image
        | repository.container_environment(container)
        | secret_files_environment(
            repository, deployment, secrets=secrets, folder=log_dir / "deployment-secrets"
        )
    )
    port = free_port()
    argv = with_option(repository.image_command(), "--host", "127.0.0.1")
    base_url = f"http://127.0.0.1:{port}"

    job_environment = (
        image
        | repository.container_environment(job)
        | secret_files_environment(
            repository, job_workload, secrets=secrets, folder=log_dir / "job-secrets"
        )
    )
    _run_to_completion(job["command"], environment=job_environment, cwd=repository.build_context)
    with ServerProcess(
        resolve(with_option(argv, "--port", str(port)), environment),
        log_path=log_dir / "image-command.log",
        env=environment,
        inherit_env=False,
        cwd=repository.build_context,
        ready_url=base_url + ready_path,
        ready_timeout=30,
    ) as server:
        paths = {container[kind]["httpGet"]["path"] for kind in PROBE_KINDS} | {"/health", "/ready"}
        answers = {path: httpx.get(base_url + path).status_code for path in sorted(paths)}
        # What the kubelet does after the preStop pause: SIGTERM, then uvicorn drains and exits.
        exit_code = server.stop(sig=signal.SIGTERM, timeout=30)

    assert environment[f"{environment_prefix}ENVIRONMENT"] == "production"
    assert answers == dict.fromkeys(answers, 200)
    # uvicorn finishes the lifespan's shutdown, then exits by the signal it got (or with 0).
    assert exit_code in {0, -signal.SIGTERM}, server.output()
    assert "Application shutdown complete." in server.output()
