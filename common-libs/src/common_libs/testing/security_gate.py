"""The security gate: scanners nobody here wrote, run on a repository, compared with its baseline.

    python -m common_libs.testing.security_gate --root REPOSITORY --scan-bin SCAN_VENV/bin

Each repository keeps ``security-baseline.yml`` at its root: what the gate reads (``scan``) and the
findings it accepts, each with its reason (``accepted``); detect-secrets keeps its own
``.secrets.baseline`` next to it. The tools come from a venv of their own (``--scan-bin``), never
from the repository's venv, whose pinned dependencies they would clash with:

- checkov: the Kubernetes manifests as ``kubectl kustomize`` renders them (each
  ``deployment/overlays/*`` when there are overlays, else ``deployment/``), the Dockerfile and
  the GitHub Actions workflow;
- gixy: the nginx configuration, rendered first by the repository's own command (gateway only);
- zizmor: the workflow, offline, with the ``auditor`` persona;
- bandit and semgrep: the Python code; semgrep with the fleet's local rules
  (``security/semgrep-rules.yml`` beside this module);
- detect-secrets: every file of the repository (``git ls-files``, or the tree when it is not a
  Git checkout), less the hashed lock files, whose hashes are not secrets.

A tool that reads nothing fails the gate: each prints how many files or checks it read, and 0 is
an error (a parser that rejects a file otherwise passes in silence). A finding the baseline does
not accept fails, and so does an accepted finding that no longer occurs (remove it). One summary
line per tool: tool, read, findings, accepted, new.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "TOOLS",
    "Finding",
    "GateError",
    "ToolReport",
    "copy_repository",
    "kustomizations",
    "main",
    "run_gate",
    "semgrep_rules",
]

TOOLS = ("checkov", "gixy", "zizmor", "bandit", "semgrep", "detect-secrets")
BASELINE = "security-baseline.yml"
SECRETS_BASELINE = ".secrets.baseline"
CHECKOV_FRAMEWORKS = {
    "kubernetes": "kubernetes",
    "dockerfile": "dockerfile",
    "workflow": "github_actions",
}
_WORKFLOW_LOCATIONS = (".github/workflows/ci-cd.yml", "cicd/ci-cd.yml")
# Lock files: every line holds a sha256, which detect-secrets' entropy check reads as a secret.
# and the baselines, which quote what they accept.
_SECRETS_EXCLUDE = (
    r"(^|/)requirements[^/]*\.txt$|(^|/)package-lock\.json$"
    r"|^\.secrets\.baseline$|^security-baseline\.yml$"
)
# What a copy of the repository and detect-secrets outside Git leave out: installed or generated.
_SKIPPED_DIRS = {".git", "node_modules", "wheels", "__pycache__", ".run", ".data", ".fleet"}


class GateError(Exception):
    """A tool that could not run, or read nothing."""


@dataclass(frozen=True, order=True)
class Finding:
    """One finding of one tool: the tool's id for the check and where it was found."""

    tool: str
    id: str
    where: str
    message: str = field(default="", compare=False)

    @property
    def key(self) -> tuple[str, str, str]:
        """What a baseline entry matches."""
        return (self.tool, self.id, self.where)


@dataclass
class ToolReport:
    """What one tool read and found, and how that compares with the baseline."""

    tool: str
    read: int
    unit: str
    findings: list[Finding]
    accepted: list[Finding] = field(default_factory=list)
    new: list[Finding] = field(default_factory=list)
    stale: list[dict[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        """The tool's one summary line."""
        return (
            f"{self.tool}: read {self.read} {self.unit}, findings {len(self.findings)}, "
            f"accepted {len(self.accepted)}, new {len(self.new)}"
            + (f", stale baseline entries {len(self.stale)}" if self.stale else "")
        )


def semgrep_rules() -> Path:
    """The fleet's local semgrep rules, as shipped in this package."""
    return Path(str(files("common_libs.testing").joinpath("security/semgrep-rules.yml")))


def _run(argv: Sequence[str], *, cwd: Path, ok_codes: Iterable[int] = (0,)) -> str:
    result = subprocess.run(  # noqa: S603 - the tools of the scan venv, with fixed arguments
        list(argv), cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode not in set(ok_codes):
        raise GateError(
            f"{Path(argv[0]).name} exited {result.returncode}:\n{result.stderr[-3000:]}"
            f"{result.stdout[-1000:]}"
        )
    return result.stdout


def kustomizations(deployment: Path) -> list[Path]:
    """The kustomizations to render: each ``overlays/*`` with one, else ``deployment/`` itself."""
    overlays = sorted(
        path.parent for path in deployment.glob("overlays/*/kustomization.yaml") if path.is_file()
    )
    if overlays:
        return overlays
    if (deployment / "kustomization.yaml").is_file():
        return [deployment]
    raise GateError(f"no kustomization.yaml in {deployment} or its overlays/*")


def workflow_of(root: Path) -> Path:
    """The repository's workflow, wherever this checkout keeps it."""
    for location in _WORKFLOW_LOCATIONS:
        if (root / location).is_file():
            return root / location
    raise GateError(f"no workflow at any of {_WORKFLOW_LOCATIONS} in {root}")


class Gate:
    """One run of the tools on one repository."""

    def __init__(self, root: Path, scan_bin: Path, config: dict[str, Any], work: Path) -> None:
        self.root = root
        self.scan_bin = scan_bin
        self.scan: dict[str, Any] = config.get("scan") or {}
        self.work = work

    def configured(self, tool: str) -> bool:
        """Whether ``scan`` gives the tool something to read (detect-secrets reads every file)."""
        needs = {
            "checkov": ("deployment", "dockerfile", "workflow"),
            "gixy": ("nginx",),
            "zizmor": ("workflow",),
            "bandit": ("python",),
            "semgrep": ("python",),
        }.get(tool)
        return needs is None or any(self.scan.get(key) for key in needs)

    def tool(self, name: str) -> str:
        path = self.scan_bin / name
        if not path.exists():
            raise GateError(f"{path} is missing: create the scan venv first (make scan-venv)")
        return str(path)

    def checkov(self) -> ToolReport:
        """checkov on the rendered manifests, the Dockerfile and the workflow."""
        target = self.work / "checkov"
        frameworks = []
        if "deployment" in self.scan:
            manifests = target / "kubernetes"
            manifests.mkdir(parents=True)
            deployment = self.root / self.scan["deployment"]
            for folder in kustomizations(deployment):
                name = "base" if folder == deployment else folder.name
                rendered = _run(["kubectl", "kustomize", str(folder)], cwd=self.root)
                (manifests / f"{name}.yaml").write_text(rendered)
            frameworks.append("kubernetes")
        if "dockerfile" in self.scan:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(self.root / self.scan["dockerfile"], target / "Dockerfile")
            frameworks.append("dockerfile")
        if self.scan.get("workflow"):
            workflows = target / ".github" / "workflows"
            workflows.mkdir(parents=True)
            shutil.copy(workflow_of(self.root), workflows / "ci-cd.yml")
            frameworks.append("workflow")
        output = _run(
            [
                self.tool("checkov"),
                "--directory", str(target),
                "--framework", *(CHECKOV_FRAMEWORKS[name] for name in frameworks),
                "--skip-download", "--output", "json", "--quiet", "--compact",
            ],
            cwd=target,
            ok_codes=(0, 1),
        )  # fmt: skip
        reports = json.loads(output)
        reports = reports if isinstance(reports, list) else [reports]
        by_type = {report.get("check_type"): report for report in reports}
        read = 0
        findings = []
        for name in frameworks:
            report: dict[str, Any] = by_type.get(CHECKOV_FRAMEWORKS[name]) or {}
            summary = report.get("summary", {})
            checks = summary.get("passed", 0) + summary.get("failed", 0)
            if not checks or summary.get("parsing_errors"):
                raise GateError(
                    f"checkov read no {name} check (its parser rejected the file?): {summary}"
                )
            read += checks
            for failed in report["results"]["failed_checks"]:
                where = failed["resource"]
                if name == "kubernetes":
                    where = f"{Path(failed['file_path']).stem}:{where}"
                elif name == "dockerfile":
                    where = str(self.scan["dockerfile"])
                findings.append(Finding("checkov", failed["check_id"], where, failed["check_name"]))
        return ToolReport("checkov", read, "checks", findings)

    def gixy(self) -> ToolReport:
        """gixy on the nginx configuration as the repository's command renders it."""
        nginx = self.scan["nginx"]
        rendered = self.work / "nginx"
        rendered.mkdir()
        main = rendered / Path(nginx["main"]).name
        shutil.copy(self.root / nginx["main"], main)
        command = [
            str(word).format(python=sys.executable, out=rendered) for word in nginx["render"]
        ]
        _run(command, cwd=self.root)
        read = len(list(rendered.rglob("*.conf")))
        output = _run(
            [self.tool("gixy"), "--format", "json", str(main)], cwd=rendered, ok_codes=(0, 1)
        )
        findings = [
            Finding(
                "gixy",
                item["plugin"],
                str(Path(item["file"]).relative_to(rendered)),
                f"line {item['line']}: {item['summary']}",
            )
            for item in json.loads(output or "[]")
        ]
        return ToolReport("gixy", read, "files", findings)

    def zizmor(self) -> ToolReport:
        """zizmor on the workflow, offline, auditor persona."""
        workflow = workflow_of(self.root)
        output = _run(
            [
                self.tool("zizmor"), "--offline", "--persona", "auditor", "--format", "json",
                "--no-exit-codes", str(workflow),
            ],
            cwd=self.root,
        )  # fmt: skip
        findings = []
        for item in json.loads(output):
            symbolic = item["locations"][0]["symbolic"]
            route = ".".join(str(next(iter(step.values()))) for step in symbolic["route"]["route"])
            findings.append(Finding("zizmor", item["ident"], route, item["desc"]))
        return ToolReport("zizmor", 1, "workflows", findings)

    def python_paths(self) -> list[str]:
        return [str(self.root / path) for path in self.scan.get("python", [])]

    def bandit(self) -> ToolReport:
        """bandit on the Python code."""
        paths = self.python_paths()
        excluded = [str(self.root / path) for path in self.scan.get("bandit_exclude", [])]
        output = _run(
            [
                self.tool("bandit"), "--recursive", "--format", "json", "--quiet",
                *(["--exclude", ",".join(excluded)] if excluded else []),
                *paths,
            ],
            cwd=self.root,
            ok_codes=(0, 1),
        )  # fmt: skip
        report = json.loads(output)
        read = len([name for name in report["metrics"] if name != "_totals"])
        findings = [
            Finding(
                "bandit",
                item["test_id"],
                self.relative(item["filename"]),
                f"line {item['line_number']}: {item['issue_text']}",
            )
            for item in report["results"]
        ]
        return ToolReport("bandit", read, "files", findings)

    def semgrep(self) -> ToolReport:
        """semgrep with the fleet's local rules on the Python code."""
        paths = self.python_paths()
        output = _run(
            [
                self.tool("semgrep"), "scan", "--config", str(semgrep_rules()), "--json",
                "--metrics", "off", "--disable-version-check", "--quiet", "--no-git-ignore",
                *paths,
            ],
            cwd=self.root,
            ok_codes=(0, 1),
        )  # fmt: skip
        report = json.loads(output)
        findings = [
            Finding(
                "semgrep",
                item["check_id"].rsplit(".", 1)[-1],
                self.relative(item["path"]),
                f"line {item['start']['line']}: {item['extra']['message']}",
            )
            for item in report["results"]
        ]
        return ToolReport("semgrep", len(report["paths"]["scanned"]), "files", findings)

    def repository_files(self) -> list[str]:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],  # noqa: S607
            cwd=self.root,
            capture_output=True,
            text=True,
            check=False,
        )
        if listed.returncode == 0 and listed.stdout.strip():
            names = listed.stdout.splitlines()
        else:
            names = [
                str(path.relative_to(self.root))
                for path in sorted(self.root.rglob("*"))
                if path.is_file()
                and not any(
                    part in _SKIPPED_DIRS or part.startswith(".venv") or part.endswith("_cache")
                    for part in path.relative_to(self.root).parts
                )
            ]
        return [name for name in names if (self.root / name).is_file()]

    def secrets_scan(self) -> str:
        """detect-secrets' own scan of the repository's files (the ``.secrets.baseline`` format)."""
        return _run(
            [
                self.tool("detect-secrets"), "scan", "--exclude-files", _SECRETS_EXCLUDE,
                *self.repository_files(),
            ],
            cwd=self.root,
        )  # fmt: skip

    def detect_secrets(self) -> ToolReport:
        """detect-secrets on every file of the repository, compared with ``.secrets.baseline``."""
        output = self.secrets_scan()
        found = {
            (name, item["type"], item["hashed_secret"]): item["line_number"]
            for name, items in json.loads(output)["results"].items()
            for item in items
        }
        baseline_path = self.root / SECRETS_BASELINE
        known = set()
        if baseline_path.is_file():
            known = {
                (name, item["type"], item["hashed_secret"])
                for name, items in json.loads(baseline_path.read_text())["results"].items()
                for item in items
            }
        report = ToolReport("detect-secrets", len(self.repository_files()), "files", [])
        for (name, kind, hashed), line in sorted(found.items()):
            finding = Finding("detect-secrets", kind, name, f"line {line}")
            report.findings.append(finding)
            (report.accepted if (name, kind, hashed) in known else report.new).append(finding)
        report.stale = [
            {"tool": "detect-secrets", "id": kind, "where": name}
            for name, kind, hashed in sorted(known - set(found))
        ]
        return report

    def relative(self, name: str) -> str:
        path = Path(name)
        path = path if path.is_absolute() else self.root / path
        return str(path.resolve().relative_to(self.root.resolve()))


def compare(report: ToolReport, accepted: list[dict[str, str]]) -> ToolReport:
    """Split the report's findings into accepted and new; list accepted entries no longer found."""
    entries = [entry for entry in accepted if entry["tool"] == report.tool]
    keys = {(entry["tool"], str(entry["id"]), str(entry["where"])) for entry in entries}
    for finding in report.findings:
        (report.accepted if finding.key in keys else report.new).append(finding)
    found = {finding.key for finding in report.findings}
    report.stale = [
        entry
        for entry in entries
        if (entry["tool"], str(entry["id"]), str(entry["where"])) not in found
    ]
    return report


def copy_repository(root: Path, target: Path) -> Path:
    """A copy of the repository's own files (no venvs, caches or installed packages) at ``target``.

    Planted-defect tests change the copy and run the gate on it, never on the checkout.
    """

    def skipped(folder: str, names: list[str]) -> set[str]:
        return {
            name
            for name in names
            if name in _SKIPPED_DIRS or name.startswith(".venv") or name.endswith("_cache")
        }

    shutil.copytree(root, target, ignore=skipped, symlinks=True)
    return target


def load_baseline(root: Path) -> dict[str, Any]:
    """The repository's ``security-baseline.yml``, checked: every accepted entry has a reason."""
    path = root / BASELINE
    config: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
    for entry in config.get("accepted") or []:
        missing = {"tool", "id", "where", "reason"} - set(entry)
        if missing or not str(entry.get("reason", "")).strip():
            raise GateError(f"{path}: accepted entry {entry} needs tool, id, where and a reason")
        if entry["tool"] not in TOOLS:
            raise GateError(f"{path}: unknown tool {entry['tool']!r} (one of {', '.join(TOOLS)})")
    return config


def _attempt(runner: Callable[[], ToolReport]) -> tuple[ToolReport | None, str]:
    try:
        return runner(), ""
    except GateError as error:
        return None, str(error)


def _problems(name: str, report: ToolReport) -> list[str]:
    accept_in = SECRETS_BASELINE if name == "detect-secrets" else BASELINE
    problems = []
    if report.read == 0:
        problems.append(f"{name}: read nothing ({report.unit}: 0); the gate needs input")
    for finding in report.new:
        how = (
            "make secrets-baseline, after checking it is no secret"
            if name == "detect-secrets"
            else f"tool: {name}, id: {finding.id}, where: {finding.where}, reason: ..."
        )
        problems.append(
            f"{name}: NEW {finding.id} at {finding.where} ({finding.message}); fix it, or accept "
            f"it in {accept_in} ({how})"
        )
    for entry in report.stale:
        problems.append(
            f"{name}: accepted {entry['id']} at {entry['where']} no longer occurs; remove it "
            f"from {accept_in}"
        )
    return problems


def run_gate(
    root: Path, scan_bin: Path, *, only: Sequence[str] = TOOLS
) -> tuple[list[ToolReport], list[str]]:
    """Run the tools named in ``only`` on ``root``; return their reports and the gate's errors."""
    root = root.resolve()
    config = load_baseline(root)
    accepted = config.get("accepted") or []
    reports: list[ToolReport] = []
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="security-gate-") as work:
        gate = Gate(root, scan_bin.resolve(), config, Path(work))
        runners: dict[str, Callable[[], ToolReport]] = {
            "checkov": gate.checkov,
            "gixy": gate.gixy,
            "zizmor": gate.zizmor,
            "bandit": gate.bandit,
            "semgrep": gate.semgrep,
            "detect-secrets": gate.detect_secrets,
        }
        selected = [name for name in only if gate.configured(name)]
        # checkov is the slow one: it runs beside the others (two cores are enough for both).
        with ThreadPoolExecutor(max_workers=2) as pool:
            slow = {name: pool.submit(runners[name]) for name in selected if name == "checkov"}
            results = {}
            for name in selected:
                if name not in slow:
                    results[name] = _attempt(runners[name])
            results |= {name: _attempt(future.result) for name, future in slow.items()}
        for name in selected:
            report, error = results[name]
            if report is None:
                errors.append(f"{name}: {error}")
                continue
            if name != "detect-secrets":
                report = compare(report, accepted)
            reports.append(report)
            errors += _problems(name, report)
    return reports, errors


def main(argv: list[str] | None = None) -> int:
    """Run the gate on a repository; print one line per tool, then any error; 1 when it fails."""
    parser = argparse.ArgumentParser(
        prog="python -m common_libs.testing.security_gate", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--root", type=Path, default=Path(), help="the repository's root")
    parser.add_argument(
        "--scan-bin", type=Path, default=Path(".venv-scan/bin"), help="the scan venv's bin/"
    )
    parser.add_argument("--only", action="append", choices=TOOLS, help="run only these tools")
    parser.add_argument(
        "--write-secrets-baseline",
        action="store_true",
        help=f"write {SECRETS_BASELINE} from what detect-secrets finds now, and stop",
    )
    arguments = parser.parse_args(argv)
    if arguments.write_secrets_baseline:
        root = arguments.root.resolve()
        with tempfile.TemporaryDirectory() as work:
            gate = Gate(root, arguments.scan_bin.resolve(), load_baseline(root), Path(work))
            (root / SECRETS_BASELINE).write_text(gate.secrets_scan())
        return 0
    try:
        reports, errors = run_gate(arguments.root, arguments.scan_bin, only=arguments.only or TOOLS)
    except GateError as failure:
        reports, errors = [], [str(failure)]
    for report in reports:
        print(f"security gate: {report.summary()}")
    for error in errors:
        print(f"security gate FAILED: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":  # pragma: no cover - run as a script
    sys.exit(main())
