"""make bench reads the events' commit-to-handled quantiles from the consumers' histogram buckets
as Prometheus' histogram_quantile does."""

from __future__ import annotations

import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.event_delays import combined, handled_delays, published_by_outcome, quantile, since

INF = math.inf
BUCKETS = {0.01: 50.0, 0.02: 90.0, 0.05: 99.0, 0.1: 100.0, INF: 100.0}


@pytest.mark.parametrize(
    ("q", "expected"), [(0.5, 0.01), (0.9, 0.02), (0.95, 0.02 + 0.03 * 5 / 9), (0.99, 0.05)]
)
def test_a_quantile_is_linear_within_its_bucket(q: float, expected: float) -> None:
    assert quantile(q, BUCKETS) == pytest.approx(expected)


def test_a_quantile_in_the_last_bucket_is_the_highest_bound_and_none_without_counts() -> None:
    assert quantile(0.99, {0.01: 1.0, 0.1: 1.0, INF: 10.0}) == 0.1
    assert math.isnan(quantile(0.5, {0.01: 0.0, INF: 0.0}))


def test_only_what_a_consumer_counted_since_counts_and_consumers_add_up() -> None:
    before = {"a": {0.01: 5.0, INF: 10.0}, "b": {0.01: 1.0, INF: 1.0}}
    after = {"a": {0.01: 7.0, INF: 14.0}, "b": {0.01: 1.0, INF: 1.0}, "c": {0.01: 1.0, INF: 2.0}}

    counted = since(before, after)

    assert counted == {"a": {0.01: 2.0, INF: 4.0}, "c": {0.01: 1.0, INF: 2.0}}
    assert combined(counted.values()) == {0.01: 3.0, INF: 6.0}


def test_one_scrape_gives_the_consumers_buckets_and_the_producers_outcomes() -> None:
    services = [
        'events_handled_delay_seconds_bucket{consumer="chat",le="0.01"} 3.0\n'
        'events_handled_delay_seconds_bucket{consumer="chat",le="+Inf"} 4.0\n'
        'events_published_total{type="catalog.product.updated",outcome="published"} 5.0\n'
        'events_published_total{type="catalog.product.updated",outcome="coalesced"} 7.0\n',
        'events_published_total{type="orders.order.confirmed",outcome="published"} 2.0\n',
    ]
    samples = [
        sample
        for text in services
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]

    assert handled_delays(samples) == {"chat": {0.01: 3.0, INF: 4.0}}
    assert published_by_outcome(samples) == {"published": 7.0, "coalesced": 7.0}
