"""Export top-level folders of the fleet as Git repositories of their own, with their history.

    python scripts/export_repos.py OUT_DIR [FOLDER ...]

Each folder (default: common-libs, the four services, api-gateway-service) becomes OUT_DIR/<folder>, a
Git repository whose root is that folder and whose history is the folder's history (``git subtree
split``), on a branch ``main``: what each team would push to its own remote. A last commit moves the
pipeline from ``cicd/ci-cd.yml`` to ``.github/workflows/ci-cd.yml``, where GitHub runs it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPOSITORIES = (
    "common-libs",
    "user-service",
    "product-catalog-service",
    "order-processing-service",
    "chat-llm-service",
    "api-gateway-service",
)


def git(*args: str, cwd: Path = ROOT) -> str:
    """Run git and return its standard output."""
    result = subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True  # noqa: S607
    )
    return result.stdout.strip()


def export(folder: str, out_dir: Path) -> Path:
    """Split ``folder``'s history out of HEAD into a new repository ``out_dir/folder``."""
    commit = git("subtree", "split", f"--prefix={folder}", "HEAD")
    target = out_dir / folder
    target.mkdir(parents=True)
    git("init", "--quiet", "--initial-branch=main", cwd=target)
    git("fetch", "--quiet", str(ROOT), commit, cwd=target)
    git("reset", "--quiet", "--hard", "FETCH_HEAD", cwd=target)
    workflow = target / "cicd" / "ci-cd.yml"
    if workflow.exists():
        (target / ".github" / "workflows").mkdir(parents=True)
        git("mv", "cicd/ci-cd.yml", ".github/workflows/ci-cd.yml", cwd=target)
        git(
            "-c", "user.name=fleet export", "-c", "user.email=export@fleet.invalid",
            "commit", "--quiet", "-m", "Move the pipeline where GitHub Actions runs it",
            cwd=target,
        )
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("folders", nargs="*", default=list(REPOSITORIES))
    args = parser.parse_args()
    for folder in args.folders:
        if folder not in REPOSITORIES:
            parser.error(f"{folder} is not one of {', '.join(REPOSITORIES)}")
        target = export(folder, args.out_dir)
        count = git("rev-list", "--count", "HEAD", cwd=target)
        print(f"{folder}: {target} ({count} commits)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
