"""Prometheus's own tool, and what a running Prometheus says about its targets and rules."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import httpx


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run Debian's promtool (``make test`` installs it with the prometheus package)."""
    binary = shutil.which("promtool")
    assert binary is not None, "promtool is not installed (scripts/ensure-system-packages.sh)"
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120, check=False)


def target_health(prometheus_url: str) -> dict[str, str]:
    """The health of each active target (``up``, ``down``, ``unknown``) by its service label."""
    answer = httpx.get(f"{prometheus_url}/api/v1/targets", params={"state": "active"}, timeout=10)
    targets: list[dict[str, Any]] = answer.json()["data"]["activeTargets"]
    return {target["labels"]["service"]: target["health"] for target in targets}


def rule_groups(prometheus_url: str) -> list[dict[str, Any]]:
    """The rule groups Prometheus has loaded, each with its rules' health and last error."""
    answer = httpx.get(f"{prometheus_url}/api/v1/rules", timeout=10)
    groups: list[dict[str, Any]] = answer.json()["data"]["groups"]
    return groups
