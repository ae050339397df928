"""A copy of the sample service for each test, and what a run of the runner left behind removed."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SAMPLE = Path(__file__).parent / "sample_service"


@pytest.fixture
def sample(tmp_path: Path) -> Iterator[Path]:
    """The sample service's ``src/``, copied; its kept cluster is removed afterwards (as root it
    lives under /var/tmp, ``.run/postgres`` linking to it)."""
    src = tmp_path / "src"
    shutil.copytree(SAMPLE, src, ignore=shutil.ignore_patterns("__pycache__"))
    yield src
    kept = src / ".run" / "postgres"
    if kept.is_symlink():
        shutil.rmtree(kept.resolve(), ignore_errors=True)


SAMPLE_TABLE: dict[str, Any] = {
    "app": "sample_app.main:create_app",
    "name": "sample-service",
    "prefix": "SAMPLE_",
    "database": "sample",
    "port": 8999,
}


def write_table(
    src: Path,
    *,
    stand_ins: dict[str, str] | None = None,
    environment: dict[str, str] | None = None,
    **keys: Any,
) -> None:
    """Give the sample service the standalone table of the sample plus ``keys``."""
    sections = {
        "tool.common-libs.standalone": {**SAMPLE_TABLE, **keys},
        "tool.common-libs.standalone.stand-ins": stand_ins or {},
        "tool.common-libs.standalone.environment": environment or {},
    }
    lines = []
    for name, table in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in table.items()]
    (src / "pyproject.toml").write_text("\n".join(lines) + "\n")


def run_json(src: Path) -> dict[str, Any]:
    """What the runner says runs."""
    facts: dict[str, Any] = json.loads((src / ".run" / "run.json").read_text())
    return facts
