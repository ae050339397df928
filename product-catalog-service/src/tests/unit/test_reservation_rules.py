"""The reservation TTL policy (settings decide the default and the bounds)."""

from __future__ import annotations

import pytest

from app.services.errors import TtlOutOfBounds
from app.services.reservation_manager import TtlPolicy

POLICY = TtlPolicy(default=600, minimum=5, maximum=3600)


def test_missing_ttl_takes_the_default() -> None:
    assert POLICY.resolve(None) == 600


@pytest.mark.parametrize("ttl", [5, 3600])
def test_ttl_on_the_bounds_is_accepted(ttl: int) -> None:
    assert POLICY.resolve(ttl) == ttl


@pytest.mark.parametrize("ttl", [4, 3601])
def test_ttl_outside_the_bounds_is_refused_with_422(ttl: int) -> None:
    with pytest.raises(TtlOutOfBounds) as refused:
        POLICY.resolve(ttl)

    assert refused.value.status == 422
    assert refused.value.extra["errors"][0]["loc"] == ["body", "ttl_seconds"]
