"""The repository's GitHub Actions workflow passes actionlint, shell scripts included."""

from __future__ import annotations

import shutil
import subprocess

from support.artifacts import REPOSITORY_ROOT, VENV_BIN, workflow_path


def test_actionlint_reports_nothing_on_the_workflow() -> None:
    # actionlint checks the `run:` scripts only when it finds shellcheck (Debian: shellcheck).
    shellcheck = shutil.which("shellcheck")
    assert shellcheck is not None, "shellcheck is not installed (make test installs it)"

    actionlint = [str(VENV_BIN / "actionlint"), "-no-color", "-shellcheck", shellcheck]
    result = subprocess.run(
        [*actionlint, str(workflow_path())],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.stdout == ""
    assert result.returncode == 0, result.stderr
