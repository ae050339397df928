"""chat-llm-service's Dockerfile, manifests and workflow pass the fleet's repository checks.

Every check is common-libs' (see common_libs.testing.service_checks); what this module adds are
the chat service's facts, among them that its image is ready once /ready answers (the tokenizer
files are in place, the catalog's read model is filled and its consumer caught up), not at its
first /health. So that it can be ready, the image's command gets stand-ins for the two addresses
of the manifests that only resolve inside the cluster and that readiness needs (the catalog for
the fill, the broker for the catalog's events), as it gets one for the database's secret URL.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from common_libs.testing import UvicornServer, create_database, start_nats
from common_libs.testing.checks import Check
from common_libs.testing.local_image import check_image_command_serves
from common_libs.testing.repository import Repository, Resource
from common_libs.testing.service_checks import ServiceFacts, service_checks

from tests.support.servers import SERVICE_ROOT

IMAGE_COMMAND_CHECK = "image-command-serves-with-the-manifests-environment"


@dataclasses.dataclass(frozen=True, kw_only=True)
class StandInRepository(Repository):
    """The repository, its containers' in-cluster addresses replaced by the test's stand-ins."""

    stand_ins: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def container_environment(self, container: Resource) -> dict[str, str]:
        """The manifests' variables, with a stand-in for each one set that has one."""
        environment = super().container_environment(container)
        return environment | {
            name: value for name, value in self.stand_ins.items() if name in environment
        }


FACTS = ServiceFacts(
    repository=StandInRepository.at(Path(__file__).resolve().parents[3]),
    environment_prefix="CHAT_",
    secret_stand_ins=lambda database_url: {
        "CHAT_DATABASE_URL": database_url,
        # Never used: starting needs no call to the LLM.
        "OPENAI_API_KEY": "sk-stand-in-for-the-image-test",
    },
    ready_path="/ready",
)


@pytest.fixture(scope="module")
def stand_in_catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The stub catalog (no products) where the image's command fills its read model from."""
    log = tmp_path_factory.mktemp("catalog") / "server.log"
    with UvicornServer("tests.support.catalog_stub:app", cwd=SERVICE_ROOT, log_path=log) as server:
        yield server.url


def _image_command_serves(request: pytest.FixtureRequest) -> None:
    database_url = create_database(
        request.getfixturevalue("postgres_server"), "chat_llm_service_image_command"
    )
    # A broker of its own: the read model's durable consumer is one per broker.
    with start_nats(prefer_docker=False) as broker:
        stand_ins = {
            "CHAT_CATALOG_URL": request.getfixturevalue("stand_in_catalog"),
            "NATS_URL": broker.url,
        }
        check_image_command_serves(
            dataclasses.replace(FACTS.repository, stand_ins=stand_ins),
            secrets=FACTS.secret_stand_ins(database_url),
            log_dir=request.getfixturevalue("tmp_path"),
            environment_prefix=FACTS.environment_prefix,
            ready_path=FACTS.ready_path,
        )


def _checks() -> list[Check]:
    """common-libs' checks, the image's command run with the stand-ins above."""
    checks = service_checks(FACTS)
    assert IMAGE_COMMAND_CHECK in [check.name for check in checks]
    return [
        Check(check.name, _image_command_serves) if check.name == IMAGE_COMMAND_CHECK else check
        for check in checks
    ]


@pytest.mark.parametrize("check", _checks(), ids=str)
def test_repository_passes_the_check(check: Check, request: pytest.FixtureRequest) -> None:
    assert check.findings(request) == []
