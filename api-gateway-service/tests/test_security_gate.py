"""The security gate bites: a copy of this repository with one planted defect fails it.

The gate (common_libs.testing.security_gate) runs the real gixy of .venv-scan on the configuration
of a copy in a temporary folder, rendered as the container renders it.
"""

from __future__ import annotations

from pathlib import Path

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
