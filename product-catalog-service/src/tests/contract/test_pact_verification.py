"""Every consumer's pact, replayed against the real catalog (process, database, token checks).

The pacts in ``tests/contract/pacts/`` are this service's copy of its consumers' published
contracts (``make test`` at the fleet's root copies them from the consumers' repositories, as a
Pact Broker would). A change here that breaks a consumer fails this test.
"""

from __future__ import annotations

from pathlib import Path

from common_libs.testing.pact import (
    RunningProvider,
    break_pact,
    consumer_pacts,
    interaction_count,
    verify_pacts,
)

from tests.integration.conftest import SERVICE_ROOT

PACTS_DIR = SERVICE_ROOT / "tests" / "contract" / "pacts"


def test_every_consumer_pact_is_honoured(provider: RunningProvider) -> None:
    pacts = consumer_pacts(PACTS_DIR, provider=provider.name)
    assert pacts, f"no consumer pact in {PACTS_DIR}: the fleet's `make test` copies them here"

    verification = verify_pacts(pacts, provider=provider)

    assert verification.passed, verification.output
    assert len(verification.interactions) == interaction_count(pacts), verification.output


def test_a_pact_the_catalog_does_not_honour_fails_verification(
    provider: RunningProvider, tmp_path: Path
) -> None:
    field = "field_the_catalog_never_sends"
    pacts = consumer_pacts(PACTS_DIR, provider=provider.name)

    verification = verify_pacts(
        [break_pact(pacts[0], field=field, into=tmp_path)], provider=provider
    )

    assert (verification.passed, field in verification.output) == (False, True)
