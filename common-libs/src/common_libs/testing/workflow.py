"""The services' CI/CD workflow, one template for all four; the service's name is its only variable.

    python -m common_libs.testing.workflow SERVICE > cicd/ci-cd.yml

writes a service's workflow again; :func:`check_workflow_is_the_rendered_template` fails while the
committed one differs from what the template renders.
"""

from __future__ import annotations

import argparse
import re
import sys
from importlib.resources import files

from common_libs.testing.repository import Repository

__all__ = ["check_workflow_is_the_rendered_template", "main", "render_workflow"]

TEMPLATE = "templates/service-ci-cd.yml"
_PLACEHOLDER = "@SERVICE@"
_SERVICE_NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")


def render_workflow(service: str) -> str:
    """The workflow of ``service`` (a repository and image name such as ``user-service``)."""
    if not _SERVICE_NAME.fullmatch(service):
        raise ValueError(f"{service!r} is not a service name (lower-case words joined by '-')")
    template = files("common_libs.testing").joinpath(TEMPLATE).read_text()
    return template.replace(_PLACEHOLDER, service)


def check_workflow_is_the_rendered_template(repository: Repository) -> None:
    """The committed workflow is exactly the template rendered for the repository's project."""
    path = repository.workflow_path()
    expected = render_workflow(repository.name)
    assert path.read_text() == expected, (
        f"{path} differs from the template of common-libs; write it again with "
        f"`python -m common_libs.testing.workflow {repository.name} > "
        f"{path.relative_to(repository.root)}`"
    )


def main(argv: list[str] | None = None) -> int:
    """Write the rendered workflow of the service named on the command line to standard output."""
    parser = argparse.ArgumentParser(
        prog="python -m common_libs.testing.workflow", description=__doc__.splitlines()[0]
    )
    parser.add_argument("service", help="the service's name, such as user-service")
    arguments = parser.parse_args(argv)
    try:
        sys.stdout.write(render_workflow(arguments.service))
    except ValueError as error:
        parser.error(str(error))
    return 0


if __name__ == "__main__":  # pragma: no cover - measured in a subprocess, where coverage is off
    sys.exit(main())
