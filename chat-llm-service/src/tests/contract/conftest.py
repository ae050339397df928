"""The pacts the assistant publishes, for the catalog and for the orders service, written by
common-libs' fixture.

Each test module here (``test_catalog_pact.py``, ``test_orders_pact.py``) holds one
``CONTRACT``; ``published_contract`` writes it to ``pacts/`` after all of that module's tests
passed, so that a broken run publishes nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from common_libs.testing.pact import published_contract

__all__ = ["published_contract"]


@pytest.fixture(scope="session")
def pacts_dir() -> Path:
    """Where the providers' copies of these pacts come from (`make test` copies them)."""
    return Path(__file__).resolve().parents[2] / "pacts"
