"""The process check services run on themselves, run on a service built the fleet's way."""

from __future__ import annotations

from pathlib import Path

import pytest

from common_libs.testing.app_checks import check_process_serves_health_and_ready

SERVICE = "common-libs"  # an installed distribution, so that its version can be read


SUPPORT_DIR = Path(__file__).resolve().parents[1] / "support"


def test_a_service_process_passes_the_process_check(tmp_path: Path) -> None:
    check_process_serves_health_and_ready(
        service=SERVICE,
        env={"SERVICE_FACTORY_DEPENDENCY": "up"},
        cwd=SUPPORT_DIR,
        log_path=tmp_path / "service.log",
        app="service_factory:create_app",
    )


def test_a_service_process_that_is_not_ready_fails_the_process_check(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="dependency"):
        check_process_serves_health_and_ready(
            service=SERVICE,
            env={},
            cwd=SUPPORT_DIR,
            log_path=tmp_path / "service.log",
            app="service_factory:create_app",
        )
