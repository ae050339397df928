"""The pact the assistant publishes for the catalog, written by common-libs' fixture.

``tests/contract/test_catalog_pact.py`` holds the ``CONTRACT``; ``published_contract`` writes it
to ``pacts/`` after all of that module's tests passed, so that a broken run publishes nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from common_libs.testing.pact import published_contract

__all__ = ["published_contract"]


@pytest.fixture(scope="session")
def pacts_dir() -> Path:
    """Where the catalog's copy of this pact comes from (the fleet's `make test` copies it)."""
    return Path(__file__).resolve().parents[2] / "pacts"
