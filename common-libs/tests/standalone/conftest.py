"""A copy of the sample service for each test, and what a run of the runner left behind removed."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

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
