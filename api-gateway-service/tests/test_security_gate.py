"""The security gate bites: a copy of this repository with one planted defect fails it.

The gate (common_libs.testing.security_gate) runs the real gixy of .venv-scan on the configuration
of a copy in a temporary folder, rendered as the container renders it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from common_libs.testing.security_gate import copy_repository, run_gate

ROOT = Path(__file__).resolve().parents[1]
SCAN_BIN = ROOT / ".venv-scan" / "bin"
TEMPLATE = "config/templates/gateway.conf.template"
LOCATION = "    location /api/users/ {\n"


def test_gate_fails_on_an_add_header_in_a_location_that_drops_the_server_headers(
    tmp_path: Path,
) -> None:
    copy = copy_repository(ROOT, tmp_path / "repository")
    template = copy / TEMPLATE
    text = template.read_text()
    assert text.count(LOCATION) == 1
    template.write_text(text.replace(LOCATION, LOCATION + '        add_header X-Planted "1";\n'))

    reports, errors = run_gate(copy, SCAN_BIN, only=["gixy"])

    assert [report.tool for report in reports] == ["gixy"]
    assert any("NEW add_header_redefinition at conf.d/gateway.conf" in error for error in errors), (
        errors
    )


def test_gate_passes_with_cors_origins_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The gate renders with the environment's settings: gixy reads the CORS maps and headers as a
    # deployment that lists origins has them, and finds nothing that the baseline does not accept.
    copy = copy_repository(ROOT, tmp_path / "repository")
    monkeypatch.setenv("GATEWAY_CORS_ORIGINS", "https://shop.example.com/")
    _, refused = run_gate(copy, SCAN_BIN, only=["gixy"])
    monkeypatch.setenv("GATEWAY_CORS_ORIGINS", "https://shop.example.com,http://127.0.0.1:5173")

    reports, errors = run_gate(copy, SCAN_BIN, only=["gixy"])

    # (The render sees the setting: a bad value stops it.)
    assert any("GATEWAY_CORS_ORIGINS: 'https://shop.example.com/'" in e for e in refused), refused
    assert [report.tool for report in reports] == ["gixy"]
    assert errors == []
