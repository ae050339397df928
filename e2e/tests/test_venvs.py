"""No venv of the checkout has two packages that install the same file.

Where two do, the file is whichever the installer unpacked last, which can differ from one machine
to the next: Yelp's detect-secrets and checkov's fork of it, bc-detect-secrets, both installed the
``detect_secrets`` module into the security gate's venvs, and a new machine's gate flagged lines the
baselines (made with the fork) did not have.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

from tests.fleet import ROOT

# The venvs `make venvs` and each folder's `make lint` create: the tools', each folder's own and
# each folder's scanners'.
VENV_PATTERNS = (".tools", "*/.venv*", "*/src/.venv*")


def _site_packages() -> list[Path]:
    found = (site for pattern in VENV_PATTERNS for site in ROOT.glob(f"{pattern}/lib/python3*"))
    return sorted(site / "site-packages" for site in found if (site / "site-packages").is_dir())


def files_installed_twice(site_packages: Path) -> dict[str, list[str]]:
    """Each file that more than one installed distribution lists in its RECORD, with their names."""
    owners: defaultdict[str, list[str]] = defaultdict(list)
    for record in sorted(site_packages.glob("*.dist-info/RECORD")):
        distribution = record.parent.name.removesuffix(".dist-info")
        with record.open(newline="") as lines:
            for row in csv.reader(lines):
                # Its own metadata, and files outside site-packages (scripts: ../../../bin/...).
                if row and not row[0].startswith((f"{record.parent.name}/", "../")):
                    owners[row[0]].append(distribution)
    return {path: names for path, names in owners.items() if len(names) > 1}


def test_every_venv_installs_each_file_from_one_package() -> None:
    venvs = _site_packages()
    assert any(site.is_relative_to(ROOT / "e2e" / ".venv") for site in venvs), venvs

    clashes = {
        str(site.relative_to(ROOT)): sorted({" and ".join(names) for names in shared.values()})
        for site in venvs
        if (shared := files_installed_twice(site))
    }

    assert clashes == {}


def test_a_file_two_packages_install_is_found(tmp_path: Path) -> None:
    for distribution in ("detect_secrets-1.5.0", "bc_detect_secrets-1.5.52"):
        info = tmp_path / f"{distribution}.dist-info"
        info.mkdir()
        (info / "RECORD").write_text(
            "detect_secrets/__init__.py,sha256=x,10\n"
            f"{info.name}/METADATA,sha256=y,20\n"
            "../../../bin/detect-secrets,sha256=z,30\n"
        )

    assert files_installed_twice(tmp_path) == {
        "detect_secrets/__init__.py": ["bc_detect_secrets-1.5.52", "detect_secrets-1.5.0"]
    }
