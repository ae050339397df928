"""How long after its commit each consumer of the fleet handled an event, from the services' own
histogram ``events_handled_delay_seconds{consumer}`` (common-libs): its buckets read before and
after a measurement, the difference is what that measurement's events took.

A quantile is read from the buckets as Prometheus' ``histogram_quantile`` reads them: linearly
within the bucket where it falls (so a p50 of "12 ms" means "between 10 and 20 ms, nearer 10").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

__all__ = [
    "Buckets",
    "combined",
    "handled_delays",
    "published_by_outcome",
    "quantile",
    "scrape",
    "since",
]

METRIC = "events_handled_delay_seconds"
# Each consumer's cumulative counts by upper bound (``le``, +Inf included).
Buckets = dict[str, dict[float, float]]


def scrape(urls: Iterable[str]) -> list[Sample]:
    """Every sample of the ``/metrics`` of each service at ``urls``, read now (once each)."""
    samples: list[Sample] = []
    for url in urls:
        text = httpx.get(f"{url}/metrics", timeout=10).raise_for_status().text
        for family in text_string_to_metric_families(text):
            samples.extend(family.samples)
    return samples


def handled_delays(samples: Iterable[Sample]) -> Buckets:
    """Every consumer's buckets in ``samples`` (:func:`scrape`)."""
    found: Buckets = {}
    for sample in samples:
        if sample.name == f"{METRIC}_bucket":
            consumer = found.setdefault(sample.labels["consumer"], {})
            consumer[float(sample.labels["le"])] = sample.value
    return found


def published_by_outcome(samples: Iterable[Sample]) -> dict[str, float]:
    """Every producer's ``events_published_total`` in ``samples`` (:func:`scrape`), by outcome
    (published, duplicate, coalesced), added up over the services."""
    found: dict[str, float] = {}
    for sample in samples:
        if sample.name == "events_published_total":
            outcome = sample.labels["outcome"]
            found[outcome] = found.get(outcome, 0.0) + sample.value
    return found


def since(before: Buckets, after: Buckets) -> Buckets:
    """What each consumer counted between ``before`` and ``after`` (consumers that counted)."""
    counted: Buckets = {}
    for consumer, buckets in after.items():
        earlier = before.get(consumer, {})
        delta = {le: count - earlier.get(le, 0.0) for le, count in buckets.items()}
        if delta.get(math.inf, 0.0) > 0:
            counted[consumer] = delta
    return counted


def combined(buckets: Iterable[Mapping[float, float]]) -> dict[float, float]:
    """The buckets of several consumers added up (they share their bounds)."""
    total: dict[float, float] = {}
    for consumer in buckets:
        for le, count in consumer.items():
            total[le] = total.get(le, 0.0) + count
    return total


def quantile(q: float, buckets: Mapping[float, float]) -> float:
    """The ``q`` quantile (0..1) of cumulative ``buckets``, in their unit (NaN when empty; the
    highest finite bound when it falls in +Inf)."""
    bounds = sorted(buckets)
    total = buckets.get(math.inf, 0.0)
    if total <= 0:
        return math.nan
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower
