"""The security gate bites: a copy of this repository with one planted defect fails it.

The gate (common_libs.testing.security_gate) runs the real scanners of src/.venv-scan on a copy in
a temporary folder; only the tool that must catch the defect runs, to keep the test fast.
"""

from __future__ import annotations

import re
from pathlib import Path

from common_libs.testing.security_gate import copy_repository, run_gate, workflow_of

ROOT = Path(__file__).resolve().parents[3]
SCAN_BIN = ROOT / "src" / ".venv-scan" / "bin"
PINNED_POSTGRES = re.compile(r"image: postgres:17@sha256:[0-9a-f]{64}")


def test_gate_fails_on_a_service_image_of_the_workflow_pinned_by_tag_only(tmp_path: Path) -> None:
    copy = copy_repository(ROOT, tmp_path / "repository")
    workflow = workflow_of(copy)
    planted, count = PINNED_POSTGRES.subn("image: postgres:17", workflow.read_text())
    assert count == 1
    workflow.write_text(planted)

    reports, errors = run_gate(copy, SCAN_BIN, only=["zizmor"])

    assert [report.tool for report in reports] == ["zizmor"]
    assert any(
        "NEW unpinned-images at jobs.test.services.postgres.image" in error for error in errors
    ), errors
