"""The pipe's metrics: outbox backlog and age, publishes, consumer outcomes, lag, how long after
its commit an event was handled, dead letters, and the deny list of deleted accounts."""

from __future__ import annotations

from dataclasses import dataclass
from weakref import WeakKeyDictionary

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["HANDLED_DELAY_BUCKETS", "EventMetrics", "event_metrics"]

# From a millisecond (a quiet fleet on one machine) to a minute (a consumer that was away).
HANDLED_DELAY_BUCKETS = (
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class EventMetrics:
    """The collectors, registered once per registry."""

    outbox_backlog: Gauge
    outbox_oldest_age: Gauge
    published: Counter
    publish_failures: Counter
    consumed: Counter
    handled_delay: Histogram
    redeliveries: Counter
    dead_lettered: Counter
    consumer_pending: Gauge
    deny_list_size: Gauge
    deny_list_following: Gauge


_metrics: WeakKeyDictionary[CollectorRegistry, EventMetrics] = WeakKeyDictionary()


def event_metrics(registry: CollectorRegistry = REGISTRY) -> EventMetrics:
    """The events' collectors of ``registry`` (created on first use; tests pass their own)."""
    metrics = _metrics.get(registry)
    if metrics is None:
        metrics = EventMetrics(
            outbox_backlog=Gauge(
                "events_outbox_backlog",
                "Events written but not yet acknowledged by the broker.",
                registry=registry,
            ),
            outbox_oldest_age=Gauge(
                "events_outbox_oldest_age_seconds",
                "Age of the oldest event not yet acknowledged by the broker (0 when none).",
                registry=registry,
            ),
            published=Counter(
                "events_published",
                "Events the broker acknowledged, by type; outcome duplicate: it already had it; "
                "coalesced: not sent, a later event of its subject carried the newer state.",
                ["type", "outcome"],
                registry=registry,
            ),
            publish_failures=Counter(
                "events_publish_failures",
                "Relay passes that failed (broker or database away); retried with backoff.",
                registry=registry,
            ),
            consumed=Counter(
                "events_consumed",
                "Messages a consumer processed, by outcome "
                "(handled, duplicate, stale, failed, dead_lettered).",
                ["consumer", "outcome"],
                registry=registry,
            ),
            handled_delay=Histogram(
                "events_handled_delay_seconds",
                "From an event's occurred_at (when it was written, just before its commit) to "
                "its handler's commit in this consumer, for the events handled (not "
                "duplicates, stale or failed deliveries).",
                ["consumer"],
                registry=registry,
                buckets=HANDLED_DELAY_BUCKETS,
            ),
            redeliveries=Counter(
                "events_redeliveries",
                "Messages delivered to a consumer more than once.",
                ["consumer"],
                registry=registry,
            ),
            dead_lettered=Counter(
                "events_dead_lettered",
                "Messages a consumer gave up on and moved to the DEADLETTER stream.",
                ["consumer"],
                registry=registry,
            ),
            consumer_pending=Gauge(
                "events_consumer_pending",
                "Messages in the stream the consumer has not been delivered yet (its lag).",
                ["consumer"],
                registry=registry,
            ),
            deny_list_size=Gauge(
                "events_deny_list_users",
                "Deleted accounts whose access tokens this process refuses until they expire.",
                registry=registry,
            ),
            deny_list_following=Gauge(
                "events_deny_list_following",
                "1 while the deny list follows users.user.deleted; 0 while the broker is away "
                "(tokens of accounts deleted meanwhile are accepted until they expire).",
                registry=registry,
            ),
        )
        _metrics[registry] = metrics
    return metrics
