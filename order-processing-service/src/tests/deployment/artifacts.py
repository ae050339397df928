"""The repository's deployment artifacts (Dockerfile, Kubernetes manifests, workflow), read as data.

Paths are relative to this repository: ``src/`` holds the Dockerfile, ``deployment/`` the
manifests listed by ``kustomization.yaml``, and the workflow is ``cicd/ci-cd.yml`` (or
``.github/workflows/ci-cd.yml`` once the repository is exported on its own).
"""

from __future__ import annotations

import json
import sys
import sysconfig
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from dockerfile_parse import DockerfileParser

SERVICE_ROOT = Path(__file__).resolve().parents[2]
REPOSITORY_ROOT = SERVICE_ROOT.parent
DEPLOYMENT_DIR = REPOSITORY_ROOT / "deployment"
DOCKERFILE = SERVICE_ROOT / "Dockerfile"
WORKFLOW_LOCATIONS = (
    REPOSITORY_ROOT / ".github" / "workflows" / "ci-cd.yml",
    REPOSITORY_ROOT / "cicd" / "ci-cd.yml",
)
# The validators' executables, installed into this venv by the dev extra.
VENV_BIN = Path(sysconfig.get_path("scripts"))
# The image's virtual environment (`python -m venv /opt/venv` in the Dockerfile); local runs of the
# image's commands use this venv in its place.
IMAGE_VENV = "/opt/venv"
# What the base image (python:3.11-slim-bookworm) sets before the Dockerfile's own ENV.
BASE_IMAGE_ENV = {
    "PATH": "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}
PROBE_KINDS = ("startupProbe", "livenessProbe", "readinessProbe")

Resource = dict[str, Any]


def workflow_path() -> Path:
    """The repository's GitHub Actions workflow, wherever this checkout keeps it."""
    for path in WORKFLOW_LOCATIONS:
        if path.is_file():
            return path
    raise FileNotFoundError(f"no workflow at any of {[str(path) for path in WORKFLOW_LOCATIONS]}")


@cache
def kustomization() -> Resource:
    """``deployment/kustomization.yaml``."""
    data: Resource = yaml.safe_load((DEPLOYMENT_DIR / "kustomization.yaml").read_text())
    return data


def listed_manifests() -> list[str]:
    """The file names ``kustomization.yaml`` lists under ``resources``, in its order."""
    return list(kustomization()["resources"])


@cache
def resources_of(file_name: str) -> tuple[Resource, ...]:
    """Every (non-empty) YAML document of one manifest file."""
    text = (DEPLOYMENT_DIR / file_name).read_text()
    return tuple(document for document in yaml.safe_load_all(text) if document)


def resources() -> list[Resource]:
    """Every resource the kustomization deploys."""
    return [resource for name in listed_manifests() for resource in resources_of(name)]


def resource(kind: str, name: str | None = None) -> Resource:
    """The one resource of ``kind`` (and ``name``, when given) that the kustomization deploys."""
    found = [
        item
        for item in resources()
        if item["kind"] == kind and (name is None or item["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def only_container(workload: Resource) -> Resource:
    """The single container of a Deployment's or Job's pod template."""
    containers: list[Resource] = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, f"{workload['metadata']['name']} has {len(containers)} containers"
    return containers[0]


def container_environment(container: Resource, secrets: Mapping[str, str]) -> dict[str, str]:
    """The variables a container gets from its manifests; ``secrets`` stands in for Secret keys.

    As in Kubernetes, ``env`` wins over ``envFrom``. A Secret key without a stand-in is an error,
    so a new secret in the manifests cannot go unnoticed here.
    """
    environment: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert set(source) <= {"configMapRef", "prefix"}, f"unsupported envFrom: {source}"
        data = resource("ConfigMap", source["configMapRef"]["name"])["data"]
        prefix = source.get("prefix", "")
        environment |= {prefix + key: str(value) for key, value in data.items()}
    for variable in container.get("env", []):
        name = variable["name"]
        if "value" in variable:
            environment[name] = str(variable["value"])
            continue
        reference = variable["valueFrom"]
        if "secretKeyRef" in reference:
            key = reference["secretKeyRef"]["key"]
            assert key in secrets, f"no stand-in value for the secret key {key}"
            environment[name] = secrets[key]
        elif "configMapKeyRef" in reference:
            selector = reference["configMapKeyRef"]
            environment[name] = str(
                resource("ConfigMap", selector["name"])["data"][selector["key"]]
            )
        else:
            raise AssertionError(f"unsupported valueFrom for {name}: {reference}")
    return environment


@cache
def dockerfile() -> DockerfileParser:
    """The service's Dockerfile, parsed (``ENV`` values expanded over the base image's)."""
    return DockerfileParser(str(DOCKERFILE), cache_content=True, parent_env=BASE_IMAGE_ENV)


def final_stage() -> list[dict[str, Any]]:
    """The instructions of the Dockerfile's last stage (the image that runs)."""
    structure: list[dict[str, Any]] = dockerfile().structure
    starts = [index for index, item in enumerate(structure) if item["instruction"] == "FROM"]
    return structure[starts[-1] + 1 :]


def instruction_values(name: str) -> list[str]:
    """The values of every ``name`` instruction of the final stage."""
    return [item["value"] for item in final_stage() if item["instruction"] == name]


def image_command() -> list[str]:
    """The image's ``CMD``, in exec form."""
    command = json.loads(dockerfile().cmd)
    assert isinstance(command, list), "CMD must use the exec form (a JSON array)"
    return [str(word) for word in command]


def option(argv: list[str], name: str) -> str:
    """The value given to the command-line option ``name`` (``--name value``)."""
    assert argv.count(name) == 1, f"{name} appears {argv.count(name)} times in {argv}"
    return argv[argv.index(name) + 1]


def with_option(argv: list[str], name: str, value: str) -> list[str]:
    """``argv`` with the value of ``name`` replaced."""
    index = argv.index(name) + 1
    return [*argv[:index], value, *argv[index + 1 :]]


def image_environment() -> dict[str, str]:
    """The image's environment, its venv mapped to the one running these tests."""
    environment = {**BASE_IMAGE_ENV, **dockerfile().envs}
    environment["PATH"] = ":".join(
        sys.prefix + entry.removeprefix(IMAGE_VENV) if entry.startswith(IMAGE_VENV) else entry
        for entry in environment["PATH"].split(":")
    )
    return environment
