"""The security gate bites: a copy of this repository with one planted defect fails it.

The gate (common_libs.testing.security_gate) runs the real scanners of src/.venv-scan on a copy in
a temporary folder; only the tools that must catch the defect run, to keep the test fast.
"""

from __future__ import annotations

from pathlib import Path

from common_libs.testing.security_gate import copy_repository, run_gate

ROOT = Path(__file__).resolve().parents[3]
SCAN_BIN = ROOT / "src" / ".venv-scan" / "bin"
CLIENT = "src/app/clients/catalog_client.py"
PLANTED = '''

def insecure_client() -> httpx.AsyncClient:
    """A client that trusts any certificate."""
    return httpx.AsyncClient(verify=False)
'''


def test_gate_fails_on_a_client_that_turns_tls_verification_off(tmp_path: Path) -> None:
    copy = copy_repository(ROOT, tmp_path / "repository")
    client = copy / CLIENT
    assert "import httpx" in client.read_text()
    client.write_text(client.read_text() + PLANTED)

    reports, errors = run_gate(copy, SCAN_BIN, only=["semgrep"])

    assert [report.tool for report in reports] == ["semgrep"]
    assert any(f"NEW httpx-verify-disabled at {CLIENT}" in error for error in errors), errors
