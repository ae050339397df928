"""The runner behind `make test` and `make test-repeat`: counts, failures, the order's seed."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import run_suites

SCRIPTS = Path(run_suites.__file__).resolve().parent


def _printing(*lines: str) -> list[str]:
    """A command that prints ``lines``, as a suite's make would."""
    return [sys.executable, "-c", f"print({chr(10).join(lines)!r})"]


def test_a_suite_counts_every_pytest_summary_it_prints_and_names_its_failures() -> None:
    out = io.StringIO()
    result = run_suites.run(
        "catalog",
        _printing(
            "====== 224 passed, 1 deselected in 47.84s ======",
            "FAILED tests/test_a.py::test_b - assert 1 == 2",
            # A failure message quoting the summary of a pytest the test ran: not this suite's.
            "    ====== 5 failed, 2 passed in 0.04s ======",
            "============ 1 failed, 3 passed, 1 skipped in 71.34s (0:01:11) ============",
        ),
        dict(os.environ),
        out,
    )

    assert (result.passed, result.failed, result.counts["skipped"]) == (227, 1, 1)
    assert result.failures == ["FAILED tests/test_a.py::test_b - assert 1 == 2"]
    assert not result.ok
    assert "FAILED tests/test_a.py::test_b" in out.getvalue()


def test_the_seed_joins_pytest_addopts_already_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_ADDOPTS", "-x")

    assert run_suites.with_seed(42)["PYTEST_ADDOPTS"] == "-x --randomly-seed=42"


def test_a_seed_that_is_no_number_is_refused_before_any_suite_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "run_suites.py")],
        env={**os.environ, "SEED": "abc", "SUITES": "none"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 2
    assert "SEED must be a whole number" in result.stdout


def _order(project: Path, seed: int) -> list[str]:
    """The order in which pytest, given the runner's environment for ``seed``, ran the tests."""
    record = project / "order.txt"
    record.unlink(missing_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(project)],
        env=run_suites.with_seed(seed),
        cwd=project,
        capture_output=True,
        check=True,
        timeout=60,
    )
    return record.read_text().split()


def test_the_seed_sets_the_order_of_the_tests_and_replays_it(tmp_path: Path) -> None:
    (tmp_path / "test_many.py").write_text(
        textwrap.dedent(
            """
            import pathlib
            import pytest

            @pytest.mark.parametrize("n", range(20))
            def test_n(n):
                with (pathlib.Path(__file__).parent / "order.txt").open("a") as record:
                    record.write(f"{n}\\n")
            """
        )
    )

    first, again, other = _order(tmp_path, 7), _order(tmp_path, 7), _order(tmp_path, 8)

    assert sorted(first, key=int) == [str(n) for n in range(20)]
    assert first != sorted(first, key=int)
    assert again == first
    assert other != first


# pytest shortens the short summary's lines to the terminal's width, unless it sees a CI (`CI` or
# `BUILD_NUMBER` set), where it prints each failure's whole message there.
@pytest.mark.parametrize("ci", [False, True], ids=["terminal", "ci"])
def test_the_failure_report_keeps_the_failed_assertion_and_leaves_out_what_the_test_logged(
    tmp_path: Path, ci: bool
) -> None:
    (tmp_path / "test_noisy.py").write_text(
        textwrap.dedent(
            """
            import logging

            def test_passes():
                pass

            def test_retries_then_fails():
                for attempt in range(400):
                    logging.getLogger("consumer").warning("delivery %d failed; again", attempt)
                assert "erased" == "kept", "the cause of the failure"
            """
        )
    )
    # In the runner's environment (make test's seed in PYTEST_ADDOPTS), as a suite runs.
    env = {key: value for key, value in os.environ.items() if key not in ("CI", "BUILD_NUMBER")}
    if ci:
        env["CI"] = "true"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-ra"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    output = result.stdout

    report = run_suites.failure_report(output, limit=4000)

    # Where the test failed, with the assertion's values: in its traceback, which a tail lost.
    failed_line = '>       assert "erased" == "kept", "the cause of the failure"'
    assert failed_line in output
    assert failed_line not in output[-4000:]
    assert failed_line in report
    assert "E       AssertionError: the cause of the failure" in report
    assert "FAILED test_noisy.py::test_retries_then_fails" in report
    assert "delivery 399 failed" in output
    assert "delivery 0 failed" not in report
    assert "delivery 399 failed" not in report


def test_the_failure_report_of_an_output_without_failures_is_its_tail() -> None:
    output = "uv: could not resolve common-libs\n" * 50

    assert run_suites.failure_report(output, limit=100) == output[-100:]
