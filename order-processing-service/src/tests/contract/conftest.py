"""The pacts this service publishes: its contracts with the catalog and with user-service.

Each test module here holds one ``CONTRACT``; common-libs' ``published_contract`` fixture writes
it to ``pacts/`` once all of the module's tests have passed (a failing or partial run leaves the
published file as it was).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from common_libs.testing.pact import published_contract

__all__ = ["published_contract"]


@pytest.fixture(scope="session")
def pacts_dir() -> Path:
    """This repository's published pacts, which the providers verify."""
    return Path(__file__).resolve().parents[2] / "pacts"
