"""DeletedUsers, the deny list itself, on a clock of the test's own: an id is denied until
keep_seconds after its deletion, then forgotten; a later deletion of the same id extends it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry

from common_libs.events import DeletedUsers


class Clock:
    """Seconds since the epoch that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now

    def at(self, offset: float = 0.0) -> datetime:
        return datetime.fromtimestamp(self.now + offset, tz=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def size(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value("events_deny_list_users")


def test_an_id_is_denied_until_keep_seconds_after_its_deletion(
    clock: Clock, registry: CollectorRegistry
) -> None:
    deleted = DeletedUsers(keep_seconds=60, clock=clock, registry=registry)
    deleted.add("u-1", clock.at())
    clock.now += 10
    deleted.add("u-2", clock.at())

    clock.now += 49
    assert ("u-1" in deleted, "u-2" in deleted, len(deleted)) == (True, True, 2)
    clock.now += 1
    assert ("u-1" in deleted, "u-2" in deleted, len(deleted)) == (False, True, 1)
    assert size(registry) == 1
    clock.now += 10
    assert "u-2" not in deleted
    assert (len(deleted), size(registry)) == (0, 0)


def test_a_deletion_older_than_keep_seconds_is_not_added(
    clock: Clock, registry: CollectorRegistry
) -> None:
    deleted = DeletedUsers(keep_seconds=60, clock=clock, registry=registry)

    deleted.add("u-1", clock.at(-60))

    assert "u-1" not in deleted
    assert len(deleted) == 0


def test_a_later_deletion_of_the_same_id_keeps_it_longer_and_an_earlier_one_not_shorter(
    clock: Clock, registry: CollectorRegistry
) -> None:
    deleted = DeletedUsers(keep_seconds=60, clock=clock, registry=registry)
    deleted.add("u-1", clock.at())
    deleted.add("u-1", clock.at(30))  # delivered again, say, with a later time
    deleted.add("u-1", clock.at(-20))  # an older copy changes nothing

    clock.now += 60  # the first entry's time is up: the later one holds
    assert "u-1" in deleted
    clock.now += 30
    assert "u-1" not in deleted


def test_only_strings_are_ever_denied(clock: Clock, registry: CollectorRegistry) -> None:
    deleted = DeletedUsers(keep_seconds=60, clock=clock, registry=registry)
    deleted.add("7", clock.at())

    assert 7 not in deleted
    assert "7" in deleted


def test_keep_seconds_must_be_positive(registry: CollectorRegistry) -> None:
    with pytest.raises(ValueError, match="keep_seconds"):
        DeletedUsers(keep_seconds=0, registry=registry)
