"""Every consumer's pact, replayed against the real order-processing-service (process, database,
token checks).

The pacts in ``tests/contract/pacts/`` are this service's copy of its consumers' published
contracts (``make test`` at the fleet's root copies them from the consumers' repositories, as a
Pact Broker would). A change here that breaks a consumer fails this test.
"""

from __future__ import annotations

from pathlib import Path

from common_libs.testing.pact import RunningProvider, break_pact, interaction_count, verify_pacts

from tests.contract.conftest import PACTS_DIR, consumer_pacts


def test_every_consumer_pact_is_honoured(provider: RunningProvider) -> None:
    pacts = consumer_pacts()
    assert pacts, f"no consumer pact in {PACTS_DIR}: the fleet's `make test` copies them here"

    verification = verify_pacts(pacts, provider=provider)

    assert verification.passed, verification.output
    assert len(verification.interactions) == interaction_count(pacts), verification.output


def test_a_pact_the_orders_service_does_not_honour_fails_verification(
    provider: RunningProvider, tmp_path: Path
) -> None:
    field = "field_the_orders_service_never_sends"
    broken = break_pact(consumer_pacts()[0], field=field, into=tmp_path)

    verification = verify_pacts([broken], provider=provider)

    assert not verification.passed
    assert field in verification.output
