"""The sample service's standalone table, written by a test, and what its run says runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
