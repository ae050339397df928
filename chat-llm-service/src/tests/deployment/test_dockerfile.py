"""The Dockerfile passes hadolint."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.deployment.artifacts import DOCKERFILE, SERVICE_ROOT, VENV_BIN


def test_hadolint_finds_no_error_or_warning_in_the_dockerfile(tmp_path: Path) -> None:
    hadolint = [str(VENV_BIN / "hadolint"), "--format", "json", "--failure-threshold", "warning"]
    # HOME is empty so that no personal hadolint configuration can silence a rule.
    result = subprocess.run(
        [*hadolint, str(DOCKERFILE)],
        cwd=SERVICE_ROOT,
        env={"HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    findings = json.loads(result.stdout)
    assert [item for item in findings if item["level"] in {"error", "warning"}] == []
    assert result.returncode == 0, result.stderr
