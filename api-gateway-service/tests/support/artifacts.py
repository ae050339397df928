"""This repository as the fleet's repository checks read it (common_libs.testing.repository).

The gateway's Dockerfile sits at the root (the build context), and its base image
(nginxinc/nginx-unprivileged, Alpine) sets its own PATH before the Dockerfile's ENV.
"""

from __future__ import annotations

from pathlib import Path

from common_libs.testing.repository import Repository

__all__ = ["REPOSITORY"]

REPOSITORY = Repository.at(
    Path(__file__).resolve().parents[2],
    dockerfile="Dockerfile",
    base_image_env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
)
