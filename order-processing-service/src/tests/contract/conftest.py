"""Consumer side of the consumer-driven contracts: the pacts this service publishes.

Each test module of this folder defines ``CONTRACT`` (see ``contracts.py``); after all of a
module's tests have passed, and every interaction was exercised, the contract is written to
``pacts/`` in this repository. A failing or partial run leaves the published file as it was.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.contract.contracts import Contract

PACTS_DIR = Path(__file__).resolve().parents[2] / "pacts"

# pact-python's library would otherwise report usage to the Pact Foundation: no network in tests.
os.environ.setdefault("PACT_DO_NOT_TRACK", "true")


@pytest.fixture(scope="module", autouse=True)
def published_contract(request: pytest.FixtureRequest) -> Iterator[None]:
    """Write the module's contract into ``pacts/`` once its tests have all passed."""
    contract = getattr(request.module, "CONTRACT", None)
    failures_before = request.session.testsfailed
    yield
    if (
        isinstance(contract, Contract)
        and contract.is_exercised
        and request.session.testsfailed == failures_before
    ):
        contract.write(PACTS_DIR)
