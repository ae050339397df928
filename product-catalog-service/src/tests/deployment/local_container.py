"""The image's commands as local processes: this venv stands in for the image's /opt/venv."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from common_libs.testing import wait_until

from tests.deployment.artifacts import SERVICE_ROOT, VENV_BIN


def resolve(argv: list[str], environment: dict[str, str]) -> list[str]:
    """``argv`` with its program looked up on the environment's PATH, as the container would."""
    program = shutil.which(argv[0], path=environment["PATH"])
    assert program is not None, f"{argv[0]} is not on the image's PATH"
    assert Path(program).parent == VENV_BIN, f"{argv[0]} does not come from the venv: {program}"
    return [program, *argv[1:]]


def run_to_completion(argv: list[str], environment: dict[str, str]) -> None:
    """Run a one-off command (a Job's) in the image's working directory; it must succeed."""
    result = subprocess.run(
        resolve(argv, environment),
        env=environment,
        cwd=SERVICE_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"{argv} failed:\n{result.stdout}{result.stderr}"


def _answers(process: subprocess.Popen[bytes], url: str, log_path: Path) -> bool:
    if process.poll() is not None:
        raise AssertionError(
            f"the service exited with {process.returncode}:\n{log_path.read_text()}"
        )
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def serving(
    argv: list[str], *, environment: dict[str, str], ready_url: str, log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` with ``environment`` alone (nothing inherited) until ``ready_url`` answers.

    The working directory is the service's folder, which the image copies to its WORKDIR.
    """
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            resolve(argv, environment),
            env=environment,
            cwd=SERVICE_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(
            lambda: _answers(process, ready_url, log_path), timeout=30, message="service answers"
        )
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
