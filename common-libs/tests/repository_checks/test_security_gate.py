"""The security gate, with the real scanners of .venv-scan, on small repositories in tmp_path."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from common_libs.testing import security_gate
from common_libs.testing.security_gate import (
    GateError,
    copy_repository,
    kustomizations,
    load_baseline,
    run_gate,
    workflow_of,
)

SCAN_BIN = Path(__file__).resolve().parents[2] / ".venv-scan" / "bin"
DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: demo
spec:
  selector:
    matchLabels: {app: demo}
  template:
    metadata:
      labels: {app: demo}
    spec:
      containers:
        - name: demo
          image: demo:1.0
"""
WORKFLOW = """
name: ci
on: [push]
permissions: write-all
concurrency:
  group: ci-${{ github.ref }}
  cancel-in-progress: CANCEL
jobs:
  test:
    runs-on: ubuntu-24.04
    services:
      db:
        image: postgres:17
    steps:
      - run: echo test
"""
NGINX = """
events {}
http {
    include conf.d/*.conf;
}
"""
SERVER = """
server {
    listen 8080;
    add_header X-Frame-Options DENY always;
    location /a/ {
        add_header X-Planted 1;
        return 200;
    }
}
"""
RENDER = (
    "import pathlib, sys; out = pathlib.Path(sys.argv[1]); out.mkdir(); "
    "(out / 'server.conf').write_text(pathlib.Path('server.conf.template').read_text())"
)
APP = """
import httpx


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(verify=False)
"""


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text).lstrip())


def baseline(scan: dict[str, object], accepted: list[dict[str, str]]) -> str:
    return json.dumps({"scan": scan, "accepted": accepted})


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """Every input the gate reads, each with one finding."""
    root = tmp_path / "repository"
    write(
        root,
        {
            "deployment/kustomization.yaml": "resources: [deployment.yaml]\n",
            "deployment/deployment.yaml": DEPLOYMENT,
            "Dockerfile": 'FROM python:3.11-slim\nCMD ["python"]\n',
            "cicd/ci-cd.yml": WORKFLOW.replace("CANCEL", "true"),
            "config/nginx.conf": NGINX,
            "server.conf.template": SERVER,
            "app/client.py": APP,
            ".venv-scan/ignored.py": "password = 'not read: a venv'\n",
            ".gitignore": ".venv-scan/\n",
        },
    )
    return root


def test_gate_reads_every_input_and_fails_on_what_the_baseline_does_not_accept(
    repository: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scan = {
        "deployment": "deployment",
        "dockerfile": "Dockerfile",
        "workflow": True,
        "python": ["app"],
        "nginx": {
            "main": "config/nginx.conf",
            "render": ["{python}", "-c", RENDER, "{out}/conf.d"],
        },
    }
    accepted = [
        {"tool": "zizmor", "id": "unpinned-images", "where": "jobs.test.services.db.image",
         "reason": "a fixture"},
        {"tool": "bandit", "id": "B999", "where": "app/client.py", "reason": "no longer found"},
    ]  # fmt: skip
    (repository / "security-baseline.yml").write_text(baseline(scan, accepted))

    assert security_gate.main(["--root", str(repository), "--scan-bin", str(SCAN_BIN)]) == 1

    out, err = capsys.readouterr()
    for tool in ("checkov", "gixy", "zizmor", "bandit", "semgrep", "detect-secrets"):
        assert f"security gate: {tool}: read " in out
    assert "checkov: NEW CKV2_GHA_1 at " in err
    assert "zizmor: NEW excessive-permissions at permissions" in err
    assert "checkov: NEW CKV_K8S_43 at base:Deployment.default.demo" in err
    assert "checkov: NEW CKV_DOCKER_3 at Dockerfile (" in err
    assert "gixy: NEW add_header_redefinition at conf.d/server.conf" in err
    assert "semgrep: NEW httpx-verify-disabled at app/client.py" in err
    assert "bandit: accepted B999 at app/client.py no longer occurs" in err
    assert ".venv-scan" not in err


def test_checkov_that_parses_no_workflow_fails_the_gate(repository: Path) -> None:
    workflow = repository / "cicd" / "ci-cd.yml"
    workflow.write_text(textwrap.dedent(WORKFLOW).replace("CANCEL", "${{ github.ref != 'main' }}"))
    (repository / "security-baseline.yml").write_text(baseline({"workflow": True}, []))

    reports, errors = run_gate(repository, SCAN_BIN, only=["checkov"])

    assert reports == []
    assert len(errors) == 1
    assert "checkov read no workflow check" in errors[0]


def test_detect_secrets_compares_with_the_secrets_baseline_in_a_git_checkout(
    repository: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(repository, {"settings.py": 'PASSWORD = "Quartz-Lantern-Orbit-2931"\n'})
    (repository / "security-baseline.yml").write_text(baseline({}, []))
    subprocess.run(["git", "init", "--quiet", str(repository)], check=True)
    arguments = ["--root", str(repository), "--scan-bin", str(SCAN_BIN)]

    reports, errors = run_gate(repository, SCAN_BIN)
    assert [report.summary() for report in reports] == [
        "detect-secrets: read 10 files, findings 1, accepted 0, new 1"
    ]
    assert "make secrets-baseline" in errors[0]

    assert security_gate.main([*arguments, "--write-secrets-baseline"]) == 0
    assert security_gate.main(arguments) == 0
    assert "findings 1, accepted 1, new 0" in capsys.readouterr().out

    (repository / "settings.py").write_text("PASSWORD = None\n")
    reports, errors = run_gate(repository, SCAN_BIN)
    assert errors == [
        "detect-secrets: accepted Secret Keyword at settings.py no longer occurs; remove it from "
        ".secrets.baseline"
    ]


def test_a_tool_that_reads_nothing_fails_the_gate(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "security-baseline.yml").write_text(baseline({"python": ["app"]}, []))

    reports, errors = run_gate(tmp_path, SCAN_BIN, only=["bandit"])

    assert reports[0].read == 0
    assert errors == ["bandit: read nothing (files: 0); the gate needs input"]


def test_checkov_reads_a_dockerfile_alone(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text('FROM python:3.11-slim\nUSER 10001\nCMD ["python"]\n')
    (tmp_path / "security-baseline.yml").write_text(baseline({"dockerfile": "Dockerfile"}, []))

    reports, errors = run_gate(tmp_path, SCAN_BIN, only=["checkov"])

    assert reports[0].read > 0
    assert [finding.id for finding in reports[0].findings] == ["CKV_DOCKER_2"]
    assert errors[0].startswith("checkov: NEW CKV_DOCKER_2 at Dockerfile (")


def test_a_missing_scan_venv_is_named(tmp_path: Path) -> None:
    (tmp_path / "security-baseline.yml").write_text(baseline({"python": ["app"]}, []))

    _, errors = run_gate(tmp_path, tmp_path / "no-venv", only=["semgrep"])

    assert errors == [f"semgrep: {tmp_path}/no-venv/semgrep is missing: create the scan venv first "
                      "(make scan-venv)"]  # fmt: skip


def test_a_tool_that_fails_is_reported_with_its_output(tmp_path: Path) -> None:
    nginx = {"main": "nginx.conf", "render": ["{python}", "-c", "raise SystemExit('no template')"]}
    (tmp_path / "nginx.conf").write_text(NGINX)
    (tmp_path / "security-baseline.yml").write_text(baseline({"nginx": nginx}, []))

    _, errors = run_gate(tmp_path, SCAN_BIN, only=["gixy"])

    assert errors[0].startswith("gixy: python")
    assert "no template" in errors[0]


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"tool": "bandit", "id": "B101", "where": "a.py", "reason": " "}, "needs tool, id"),
        ({"tool": "trivy", "id": "X", "where": "a", "reason": "r"}, "unknown tool 'trivy'"),
    ],
)
def test_every_accepted_finding_names_a_known_tool_and_a_reason(
    tmp_path: Path, entry: dict[str, str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "security-baseline.yml").write_text(baseline({}, [entry]))

    with pytest.raises(GateError, match=problem):
        load_baseline(tmp_path)
    assert security_gate.main(["--root", str(tmp_path)]) == 1
    assert problem in capsys.readouterr().err


def test_overlays_are_rendered_instead_of_the_base(tmp_path: Path) -> None:
    for folder in ("base", "overlays/prod", "overlays/dev"):
        write(tmp_path / "deployment", {f"{folder}/kustomization.yaml": "resources: []\n"})
    write(tmp_path / "flat", {"kustomization.yaml": "resources: []\n"})

    assert kustomizations(tmp_path / "deployment") == [
        tmp_path / "deployment/overlays/dev",
        tmp_path / "deployment/overlays/prod",
    ]
    assert kustomizations(tmp_path / "flat") == [tmp_path / "flat"]
    with pytest.raises(GateError, match=r"no kustomization\.yaml"):
        kustomizations(tmp_path)


def test_the_workflow_is_found_where_the_checkout_keeps_it(tmp_path: Path) -> None:
    with pytest.raises(GateError, match="no workflow"):
        workflow_of(tmp_path)
    write(tmp_path, {".github/workflows/ci-cd.yml": WORKFLOW})
    assert workflow_of(tmp_path) == tmp_path / ".github/workflows/ci-cd.yml"


def test_a_copy_leaves_venvs_and_caches_behind(repository: Path, tmp_path: Path) -> None:
    write(repository, {"node_modules/x.js": "", ".mypy_cache/x": ""})

    copy = copy_repository(repository, tmp_path / "copy")

    assert (copy / "app" / "client.py").is_file()
    assert not (copy / ".venv-scan").exists()
    assert not (copy / "node_modules").exists()
    assert not (copy / ".mypy_cache").exists()
