"""The image's CMD runs nginx with the settings the manifests give it, and answers the probes.

No Docker engine is needed: the files the Dockerfile copies go into a directory standing in for
the image's root, the templates are rendered there as the image's entrypoint renders them (from
the image's ENV and the Deployment's ConfigMap), and the CMD runs with its paths moved into that
directory. Only the listen address (127.0.0.1 and a free port instead of 0.0.0.0:8080) and the
upstream addresses (Service names that resolve only inside the cluster) change.
"""

from __future__ import annotations

import functools
import shlex
import shutil
import signal
import tempfile
from pathlib import Path, PurePosixPath

import httpx
import pytest
from common_libs.testing.repository import PROBE_KINDS, only_container

import render_config
from support.artifacts import REPOSITORY
from support.processes import ManagedProcess, free_port, http_answers
from support.servers import nginx_binary

# Where the official nginx image's entrypoint reads templates and writes what it renders.
TEMPLATE_DIR = "/etc/nginx/templates"
RENDERED_DIR = "/etc/nginx/conf.d"
UPSTREAM_VARIABLES = [f"{name}_SERVICE_UPSTREAM" for name in ("USER", "CATALOG", "ORDER", "CHAT")]
# The build stages the final stage copies from: their WORKDIR, and where the same files are in this
# checkout. The Swagger UI stage runs `npm ci` on package.json, as `make venv` does here.
BUILD_STAGES = {"swagger-ui": (PurePosixPath("/build"), REPOSITORY.root)}
# What the gateway serves from its image (GATEWAY_STATIC_DIR), besides the probes' paths.
SERVED_FILES = [
    "/api/openapi.json",
    "/api/docs",
    "/api/docs/init.js",
    "/api/docs/swagger-ui-bundle.js",
    "/api/docs/swagger-ui.css",
    "/api/docs/favicon-32x32.png",
]


def _inside(root: Path, image_path: str) -> Path:
    """Where an absolute path of the image lies under ``root``."""
    return root / image_path.lstrip("/")


def _origin(source: str, stage: str | None) -> Path:
    """The file of this checkout that a COPY source stands for (build context or build stage)."""
    if stage is None:
        return REPOSITORY.root / source
    workdir, local = BUILD_STAGES[stage]
    return local / PurePosixPath(source).relative_to(workdir)


def build_image_root(root: Path) -> None:
    """Copy what the Dockerfile's final stage copies (context and build stages), under ``root``."""
    for copy in REPOSITORY.instruction_values("COPY"):
        words = shlex.split(copy)
        stage = next(
            (word.removeprefix("--from=") for word in words if word.startswith("--from=")), None
        )
        *sources, destination = [word for word in words if not word.startswith("--")]
        for source in sources:
            origin = _origin(source, stage)
            target = _inside(root, destination)
            if origin.is_dir():
                shutil.copytree(origin, target, dirs_exist_ok=True)
                continue
            if destination.endswith("/"):
                target /= origin.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(origin, target)


def relocated_command(root: Path) -> list[str]:
    """The image's CMD with nginx's prefix (-p) and configuration (-c) under ``root``."""
    argv = REPOSITORY.image_command()
    assert argv[0] == "nginx"
    for option in ("-p", "-c"):
        index = argv.index(option) + 1
        argv[index] = str(_inside(root, argv[index])) + ("/" if argv[index].endswith("/") else "")
    Path(argv[argv.index("-p") + 1]).mkdir(parents=True, exist_ok=True)
    return [nginx_binary(), *argv[1:]]


def test_image_command_answers_every_probe_with_the_manifests_settings(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    container = only_container(REPOSITORY.resource("Deployment"))
    port = free_port()
    environment = (
        REPOSITORY.image_environment()
        | REPOSITORY.container_environment(container)
        | {"GATEWAY_LISTEN": f"127.0.0.1:{port}"}
        | {name: f"127.0.0.1:{free_port()}" for name in UPSTREAM_VARIABLES}
    )
    # In the system temp dir, searchable by nginx's workers (nobody, when the tests run as root),
    # which read the served files from it; tmp_path may sit below a private directory.
    root = Path(tempfile.mkdtemp(prefix="image-root-"))
    root.chmod(0o755)
    request.addfinalizer(functools.partial(shutil.rmtree, root, ignore_errors=True))
    build_image_root(root)
    static_dir = environment["GATEWAY_STATIC_DIR"]
    environment["GATEWAY_STATIC_DIR"] = str(_inside(root, static_dir))
    render_config.render_templates(
        _inside(root, TEMPLATE_DIR), _inside(root, RENDERED_DIR), environment
    )
    base_url = f"http://127.0.0.1:{port}"

    gateway = ManagedProcess(
        relocated_command(root), name="image-gateway", log_dir=tmp_path, env=environment
    )
    try:
        gateway.wait_ready(functools.partial(http_answers, base_url + "/healthz"))
        answers = {
            path: httpx.get(base_url + path)
            for path in sorted({container[kind]["httpGet"]["path"] for kind in PROBE_KINDS})
        }
        served = {path: httpx.get(base_url + path) for path in SERVED_FILES}
    finally:
        # The image's STOPSIGNAL: nginx finishes the requests in flight, then exits.
        exit_code = gateway.stop(signal.SIGQUIT)

    assert {path: answer.status_code for path, answer in answers.items()} == dict.fromkeys(
        answers, 200
    )
    assert all(answer.json() == {"status": "ok"} for answer in answers.values())
    assert static_dir == "/usr/share/nginx/gateway"
    assert {path: answer.status_code for path, answer in served.items()} == dict.fromkeys(
        served, 200
    )
    assert (
        served["/api/openapi.json"].content
        == (REPOSITORY.root / "openapi" / "openapi.json").read_bytes()
    )
    assert exit_code == 0, gateway.stderr()
