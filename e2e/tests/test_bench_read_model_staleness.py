"""make bench's item 4 measures how far the chat's read model of the ordered product lags the
catalog: each version from the first sample that saw it committed at the catalog to the first
that saw the read model at it or later (bench/read_model_staleness.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from bench.read_model_staleness import Sample, StalenessSampler, staleness_ms
from tests.fleet import Fleet
from tests.support.shop import Account, Shop, bearer


def sample(at: float, catalog: int | None, model: int | None) -> Sample:
    """Both versions read at ``at`` seconds (the read model's a millisecond later)."""
    return Sample(at, catalog, at + 0.001, model)


def test_each_version_counts_from_the_catalog_sample_that_saw_it_to_the_model_sample() -> None:
    samples = [
        sample(0.000, 7, 7),
        sample(0.010, 8, 7),  # 8 committed
        sample(0.020, 10, 8),  # 9 and 10 committed together; 8 reached
        sample(0.030, 10, 9),
        sample(0.040, 10, 10),
    ]

    stale, behind = staleness_ms(samples)

    # 8: seen at 0.010, reached at 0.021; 9 and 10: seen at 0.020, reached at 0.031 and 0.041.
    assert stale == pytest.approx([11.0, 11.0, 21.0])
    assert behind == 0


def test_versions_the_model_skips_to_are_all_reached_then() -> None:
    # The relay coalesced 2 and 3 into 4: the read model goes from 1 to 4 at once.
    samples = [sample(0.0, 1, 1), sample(0.1, 4, 1), sample(0.2, 4, 4)]

    stale, behind = staleness_ms(samples)

    assert stale == pytest.approx([101.0, 101.0, 101.0])
    assert behind == 0


def test_versions_before_sampling_or_never_reached_are_not_measured() -> None:
    samples = [
        sample(0.0, None, None),  # the product has no event yet
        sample(0.1, 3, None),  # versions up to 3 were committed before we looked
        sample(0.2, 5, 3),
        sample(0.3, 6, 4),
    ]

    stale, behind = staleness_ms(samples)

    assert stale == pytest.approx([101.0])  # only 4 was seen committed, then reached
    assert behind == 2  # 5 and 6


class Reads:
    """A connection whose one prepared statement answers ``read()`` (stands in for asyncpg's)."""

    def __init__(self, read: Callable[[], int]) -> None:
        self._read = read

    async def prepare(self, query: str) -> Reads:
        return self

    async def fetchval(self, *args: Any) -> int:
        return self._read()


def test_a_sample_begun_before_the_load_ended_does_not_end_the_sampling() -> None:
    sampler = StalenessSampler(catalog_dsn="", chat_dsn="", product_id="p")
    versions = {"catalog": 3, "model": 3, "model_reads": 0}

    def catalog() -> int:
        return versions["catalog"]

    def model() -> int:
        versions["model_reads"] += 1
        if versions["model_reads"] == 2:
            # Between this sample's two reads the last change commits and the run ends (what
            # finish() does, without waiting for the sampling's thread).
            versions["catalog"] = 4
            sampler._load_over.set()
        elif versions["model_reads"] == 4:
            versions["model"] = 4
        return versions["model"]

    asyncio.run(sampler._loop(Reads(catalog), Reads(model)))

    readings = [(s.catalog_version, s.model_version) for s in sampler._samples]
    assert readings == [(3, 3), (3, 3), (4, 3), (4, 4)]


def test_the_sampler_reads_the_versions_the_catalog_and_the_chat_write(
    fleet: Fleet, shop: Shop, admin: Account
) -> None:
    product = shop.add_product(admin, stock=5)
    dsn = f"postgresql://postgres@127.0.0.1:{fleet.ports['FLEET_PG_PORT']}"
    sampler = StalenessSampler(
        catalog_dsn=f"{dsn}/catalog", chat_dsn=f"{dsn}/chat", product_id=product["id"]
    ).start()
    try:
        for price in ("31.00", "32.00", "33.00"):
            changed = shop.client.patch(
                f"{shop.endpoints.catalog}/products/{product['id']}",
                json={"price": price},
                headers=bearer(admin.access_token),
            )
            assert changed.status_code == 200, changed.text
    finally:
        samples = sampler.finish()

    stale, behind = staleness_ms(samples)

    # Created at version 1 (committed with the product, perhaps not yet in the read model when
    # sampling began), then three changes, each reached by the read model before the sampling
    # ended (it settles for up to 10 s).
    assert samples[0].catalog_version == 1
    assert samples[-1].catalog_version == samples[-1].model_version == 4
    assert len(stale) == 3
    assert behind == 0
    assert all(0 <= ms < 10_000 for ms in stale)
