"""A repository's deployment artifacts (Dockerfile, Kubernetes manifests, workflow), read as data.

Every repository of the fleet has the same layout: ``deployment/base/`` holds the manifests that
its ``kustomization.yaml`` lists, ``deployment/overlays/<environment>/`` the kustomizations that
deploy them (common_libs.testing.overlays renders and checks those), the workflow is
``cicd/ci-cd.yml`` (``.github/workflows/ci-cd.yml`` once the repository is exported on its own),
and the Dockerfile sits in the image's build context (``src/`` for a service, the root for the
gateway). Lookups that find no match, or more than one,
fail with an ``AssertionError`` that names what was expected.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from dockerfile_parse import DockerfileParser

__all__ = [
    "KUBERNETES_VERSION",
    "PROBE_KINDS",
    "PYTHON_IMAGE_ENV",
    "WORKLOAD_KINDS",
    "Repository",
    "Resource",
    "container_port",
    "only_container",
    "option",
    "secret_mount",
    "with_option",
]

Resource = dict[str, Any]
# The cluster version the manifests are written for (schemas bundled by kubernetes-validate).
KUBERNETES_VERSION = "1.35.0"
WORKLOAD_KINDS = frozenset({"Deployment", "Job", "StatefulSet", "DaemonSet", "CronJob"})
PROBE_KINDS = ("startupProbe", "livenessProbe", "readinessProbe")
# What the fleet's Python base image (python:3.11-slim-bookworm) sets before a Dockerfile's ENV.
PYTHON_IMAGE_ENV: Mapping[str, str] = {
    "PATH": "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}
_WORKFLOW_LOCATIONS = (".github/workflows/ci-cd.yml", "cicd/ci-cd.yml")


@dataclass(frozen=True, kw_only=True)
class Repository:
    """One repository of the fleet, its artifacts parsed on first use and then kept."""

    root: Path
    dockerfile: Path
    base_image_env: Mapping[str, str] = field(default_factory=lambda: dict(PYTHON_IMAGE_ENV))

    @classmethod
    def at(
        cls,
        root: Path,
        *,
        dockerfile: str = "src/Dockerfile",
        base_image_env: Mapping[str, str] = PYTHON_IMAGE_ENV,
    ) -> Repository:
        """The repository whose root folder is ``root`` (``dockerfile`` is relative to it)."""
        return cls(root=root, dockerfile=root / dockerfile, base_image_env=dict(base_image_env))

    @property
    def build_context(self) -> Path:
        """The image's build context: the Dockerfile's folder."""
        return self.dockerfile.parent

    @property
    def deployment_dir(self) -> Path:
        """``deployment/base/``, the Kubernetes manifests every environment deploys."""
        return self.root / "deployment" / "base"

    @property
    def overlays_dir(self) -> Path:
        """``deployment/overlays/``, one kustomization per environment."""
        return self.root / "deployment" / "overlays"

    def overlay_names(self) -> list[str]:
        """The environments that ``deployment/overlays/`` has a kustomization for, sorted."""
        return sorted(path.parent.name for path in self.overlays_dir.glob("*/kustomization.yaml"))

    @cached_property
    def name(self) -> str:
        """The project's name, from the ``pyproject.toml`` of the build context."""
        project = tomllib.loads((self.build_context / "pyproject.toml").read_text())
        return str(project["project"]["name"])

    def workflow_path(self) -> Path:
        """The repository's GitHub Actions workflow, wherever this checkout keeps it."""
        for location in _WORKFLOW_LOCATIONS:
            if (self.root / location).is_file():
                return self.root / location
        raise FileNotFoundError(f"no workflow at any of {_WORKFLOW_LOCATIONS} in {self.root}")

    @cached_property
    def kustomization(self) -> Resource:
        """``deployment/base/kustomization.yaml``."""
        data: Resource = yaml.safe_load((self.deployment_dir / "kustomization.yaml").read_text())
        return data

    def listed_manifests(self) -> list[str]:
        """The file names ``kustomization.yaml`` lists under ``resources``, in its order."""
        return [str(name) for name in self.kustomization["resources"]]

    def resources_of(self, file_name: str) -> list[Resource]:
        """Every (non-empty) YAML document of one manifest file."""
        text = (self.deployment_dir / file_name).read_text()
        return [document for document in yaml.safe_load_all(text) if document]

    @cached_property
    def resources(self) -> list[Resource]:
        """Every resource the kustomization deploys."""
        return [item for name in self.listed_manifests() for item in self.resources_of(name)]

    def resource(self, kind: str, name: str | None = None) -> Resource:
        """The one resource of ``kind`` (and ``name``, when given) the kustomization deploys."""
        found = [
            item
            for item in self.resources
            if item["kind"] == kind and (name is None or item["metadata"]["name"] == name)
        ]
        assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
        return found[0]

    def container_environment(self, container: Resource) -> dict[str, str]:
        """The variables a container gets from its manifests' ConfigMaps and values.

        As in Kubernetes, ``env`` wins over ``envFrom``. A Secret is no source: secrets reach
        the containers as files (:func:`secret_mount`), never as variables.
        """
        environment: dict[str, str] = {}
        for source in container.get("envFrom", []):
            assert set(source) <= {"configMapRef", "prefix"}, f"unsupported envFrom: {source}"
            data = self.resource("ConfigMap", source["configMapRef"]["name"])["data"]
            prefix = source.get("prefix", "")
            environment |= {prefix + key: str(value) for key, value in data.items()}
        for variable in container.get("env", []):
            environment[variable["name"]] = self._value_of(variable)
        return environment

    def _value_of(self, variable: Resource) -> str:
        if "value" in variable:
            return str(variable["value"])
        reference = variable["valueFrom"]
        assert "secretKeyRef" not in reference, (
            f"{variable['name']} comes from a Secret: mount the Secret as files instead"
        )
        assert "configMapKeyRef" in reference, f"unsupported valueFrom: {reference}"
        selector = reference["configMapKeyRef"]
        return str(self.resource("ConfigMap", selector["name"])["data"][selector["key"]])

    @cached_property
    def _parsed_dockerfile(self) -> Any:
        # dockerfile_parse has no type information.
        return DockerfileParser(
            str(self.dockerfile), cache_content=True, parent_env=dict(self.base_image_env)
        )

    def final_stage(self) -> list[dict[str, Any]]:
        """The instructions of the Dockerfile's last stage (the image that runs)."""
        structure: list[dict[str, Any]] = self._parsed_dockerfile.structure
        starts = [index for index, item in enumerate(structure) if item["instruction"] == "FROM"]
        return structure[starts[-1] + 1 :]

    def instruction_values(self, name: str) -> list[str]:
        """The values of every ``name`` instruction of the final stage."""
        return [str(item["value"]) for item in self.final_stage() if item["instruction"] == name]

    def image_command(self) -> list[str]:
        """The image's ``CMD``, in exec form."""
        try:
            command = json.loads(self._parsed_dockerfile.cmd)
        except json.JSONDecodeError:
            command = None
        assert isinstance(command, list), "CMD must use the exec form (a JSON array)"
        return [str(word) for word in command]

    def image_environment(self) -> dict[str, str]:
        """The image's environment: the base image's, then the Dockerfile's ``ENV``."""
        envs: dict[str, str] = self._parsed_dockerfile.envs
        # Docker reads "\$" in a double-quoted ENV value as "$"; dockerfile_parse keeps the "\".
        return {**self.base_image_env} | {
            name: value.replace("\\$", "$") for name, value in envs.items()
        }


def secret_mount(workload: Resource, container: Resource) -> Resource | None:
    """The container's mount of a Secret volume of the workload's pod (one at most), if any."""
    pod = workload["spec"]["template"]["spec"]
    secret_volumes = {volume["name"] for volume in pod.get("volumes", []) if "secret" in volume}
    mounts = [item for item in container.get("volumeMounts", []) if item["name"] in secret_volumes]
    assert len(mounts) <= 1, f"{container['name']} mounts {len(mounts)} Secret volumes"
    return mounts[0] if mounts else None


def only_container(workload: Resource) -> Resource:
    """The single container of a Deployment's or Job's pod template."""
    containers: list[Resource] = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, f"{workload['metadata']['name']} has {len(containers)} containers"
    return containers[0]


def container_port(container: Resource, port: int | str) -> int:
    """A probe's or Service's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    named = {item["name"]: item["containerPort"] for item in container["ports"] if "name" in item}
    assert port in named, f"the container has no port named {port}"
    return int(named[port])


def option(argv: list[str], name: str) -> str:
    """The value given to the command-line option ``name`` (``--name value``)."""
    assert argv.count(name) == 1, f"{name} appears {argv.count(name)} times in {argv}"
    return argv[argv.index(name) + 1]


def with_option(argv: list[str], name: str, value: str) -> list[str]:
    """``argv`` with the value of ``name`` replaced."""
    index = argv.index(name) + 1
    return [*argv[:index], value, *argv[index + 1 :]]
