"""One workflow template for the services, rendered by name on the command line."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from common_libs.testing.workflow import main, render_workflow


def test_rendering_puts_the_name_where_the_template_has_its_placeholder() -> None:
    rendered = render_workflow("order-processing-service")

    assert "@SERVICE@" not in rendered
    assert yaml.safe_load(rendered)["env"]["SERVICE"] == "order-processing-service"
    assert rendered.startswith("# CI/CD of order-processing-service,")


def test_a_name_that_is_no_service_name_is_refused() -> None:
    with pytest.raises(ValueError, match="is not a service name"):
        render_workflow("user-service: {}")


def test_the_command_writes_the_rendered_workflow(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["user-service"]) == 0

    assert capsys.readouterr().out == render_workflow("user-service")


def test_the_command_refuses_a_bad_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["User Service"])

    assert exit_info.value.code == 2
    assert "is not a service name" in capsys.readouterr().err


def test_the_module_runs_as_a_program() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "common_libs.testing.workflow", "chat-llm-service"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == render_workflow("chat-llm-service")
