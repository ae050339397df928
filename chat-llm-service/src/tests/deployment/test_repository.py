"""chat-llm-service's Dockerfile, manifests and workflow pass the fleet's repository checks.

Every check is common-libs' (see common_libs.testing.service_checks); what this module adds are
the chat service's facts, among them that its image is ready once /ready answers (the tokenizer
files are in place), not at its first /health.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from common_libs.testing.checks import Check
from common_libs.testing.repository import Repository
from common_libs.testing.service_checks import ServiceFacts, service_checks

FACTS = ServiceFacts(
    repository=Repository.at(Path(__file__).resolve().parents[3]),
    environment_prefix="CHAT_",
    secret_stand_ins=lambda database_url: {
        "CHAT_DATABASE_URL": database_url,
        # Never used: starting needs no call to the LLM.
        "OPENAI_API_KEY": "sk-stand-in-for-the-image-test",
    },
    ready_path="/ready",
)


@pytest.mark.parametrize("check", service_checks(FACTS), ids=str)
def test_repository_passes_the_check(check: Check, request: pytest.FixtureRequest) -> None:
    assert check.findings(request) == []
