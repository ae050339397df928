"""Each repository, exported alone with its history, installs and passes its README's tests.

A service repository gets nothing from this checkout but the pinned common-libs wheel (in
``src/wheels/``, where its README and Dockerfile expect it) and runs its README's commands at its
root (its Makefile there runs src/'s); the gateway gets the same wheel in ``wheels/`` (its tests
run the fleet's repository checks from it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = (
    "user-service",
    "product-catalog-service",
    "order-processing-service",
    "chat-llm-service",
)
WHEEL = ROOT / ".wheels" / "common_libs-3.0.0-py3-none-any.whl"
UV = os.environ.get("UV", "uv")
_CHECKOUT_VARIABLES = frozenset(
    {
        "MAKEFLAGS",
        "MFLAGS",
        "MAKELEVEL",
        "MAKEOVERRIDES",
        "VIRTUAL_ENV",
        "PYTHONPATH",
        "COMMON_LIBS_WHEELS",
        "UV",
        "TEST_DATABASE_URL",
    }
)
_SUMMARY = re.compile(r"=+ (\d+) passed(?:, \d+ warnings?)? in [\d.]+s")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every repository exported into a fresh folder outside this checkout."""
    out_dir = tmp_path_factory.mktemp("exported")
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "export_repos.py"), str(out_dir)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return out_dir


def _documented(readme: Path, *commands: str) -> None:
    text = readme.read_text()
    for command in commands:
        assert command in text, f"{readme} does not document `{command}`"


def _run_documented_commands(workdir: Path) -> str:
    # The machine's environment, less everything that belongs to this checkout: a parent make's
    # variable overrides (MAKEFLAGS carries COMMON_LIBS_WHEELS=...), its venvs, its fleet settings.
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _CHECKOUT_VARIABLES and not key.startswith(("FLEET_", "PYTEST_"))
    }
    result = subprocess.run(
        ["make", "venv", "test", f"UV={UV}"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return output


@pytest.mark.parametrize("name", SERVICES)
def test_exported_service_installs_and_passes_its_tests_alone(name: str, exported: Path) -> None:
    project = exported / name
    _documented(project / "README.md", "make venv test", "make run", "CONTRACT.md")
    (project / "src" / "wheels").mkdir()
    shutil.copy(WHEEL, project / "src" / "wheels")

    output = _run_documented_commands(project)

    passed = _SUMMARY.findall(output)
    assert passed, output[-2000:]
    assert int(passed[-1]) > 0
    assert (exported / name / ".github" / "workflows" / "ci-cd.yml").exists()
    assert (project / "CONTRACT.md").exists()
    assert not (project / "src" / "README.md").exists()


def test_exported_gateway_installs_and_passes_its_tests_alone(exported: Path) -> None:
    project = exported / "api-gateway-service"
    _documented(project / "README.md", "make test")
    (project / "wheels").mkdir()
    shutil.copy(WHEEL, project / "wheels")

    output = _run_documented_commands(project)

    passed = _SUMMARY.findall(output)
    assert passed, output[-2000:]
    assert int(passed[-1]) > 0


def test_exported_repositories_keep_their_history(exported: Path) -> None:
    for name in (*SERVICES, "api-gateway-service", "common-libs"):
        count = subprocess.run(
            ["git", "rev-list", "--count", "HEAD"],
            cwd=exported / name,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert int(count) > 1, name
        assert not (exported / name / "e2e").exists()
