"""The gateway's Dockerfile, manifests and workflow pass the fleet's repository checks.

The checks that apply to any repository (hadolint, the kustomization, every manifest strictly
valid, kustomize's images, actionlint) come from common_libs.testing.checks, one test id each.
What is the gateway's own (nginx's port and drain, the image's command) has its own modules.
"""

from __future__ import annotations

import pytest
from common_libs.testing.checks import Check, repository_checks

from support.artifacts import REPOSITORY


@pytest.mark.parametrize("check", repository_checks(REPOSITORY), ids=str)
def test_gateway_repository_passes(check: Check, request: pytest.FixtureRequest) -> None:
    assert check.findings(request) == []
