"""Every consumer's pact, replayed against the real user-service (process, database, keys).

The pacts in ``tests/contract/pacts/`` are this service's copy of its consumers' published
contracts (``make test`` at the fleet's root copies them from the consumers' repositories, as a
Pact Broker would). A change here that breaks a consumer fails this test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pact import Verifier

from tests.conftest import SERVICE_ROOT
from tests.contract.conftest import PACTS_DIR, PROVIDER, RunningProvider, consumer_pacts


@dataclass(frozen=True)
class Verification:
    """What the pact verifier found."""

    passed: bool
    output: str
    interactions: list[dict[str, Any]]


def verify(provider: RunningProvider, pacts: list[Path]) -> Verification:
    """Replay every interaction of ``pacts`` against ``provider``, each after its state is set."""
    verifier = (
        Verifier(PROVIDER, host="127.0.0.1")
        .add_transport(url=provider.url)
        .state_handler(provider.provider_states_url, body=True)
        .set_coloured_output(enabled=False)
    )
    for pact in pacts:
        verifier.add_source(pact)
    try:
        verifier.verify()
    except RuntimeError:
        passed = False
    else:
        passed = True
    results = verifier.results
    return Verification(
        passed=passed and bool(results["result"]),
        output=verifier.output(strip_ansi=True),
        interactions=results["interactionResults"],
    )


def interaction_count(pacts: list[Path]) -> int:
    """How many interactions ``pacts`` hold."""
    return sum(len(json.loads(pact.read_text())["interactions"]) for pact in pacts)


def test_every_consumer_pact_is_honoured(provider: RunningProvider) -> None:
    pacts = consumer_pacts()
    assert pacts, (
        f"no consumer pact in {PACTS_DIR.relative_to(SERVICE_ROOT)}: copy the consumers' "
        f"pacts/*-{PROVIDER}.json here (the fleet's `make test` does)"
    )

    verification = verify(provider, pacts)

    assert verification.passed, verification.output
    assert len(verification.interactions) == interaction_count(pacts), verification.output


def test_a_pact_the_provider_does_not_honour_fails_verification(
    provider: RunningProvider, tmp_path: Path
) -> None:
    pacts = consumer_pacts()
    assert pacts, "no consumer pact to break"
    broken = json.loads(pacts[0].read_text())
    expected_body = next(
        interaction["response"]["body"]["content"]
        for interaction in broken["interactions"]
        if isinstance(interaction["response"].get("body", {}).get("content"), dict)
    )
    expected_body["field_user_service_never_sends"] = "anything"
    broken_pact = tmp_path / pacts[0].name
    broken_pact.write_text(json.dumps(broken))

    verification = verify(provider, [broken_pact])

    assert not verification.passed
    assert "field_user_service_never_sends" in verification.output
