"""make bench's report: a failing measurement does not take the others' rows with it, and a p99 of
samples stays within them."""

from __future__ import annotations

import pytest

from bench.report import Row, measured, p99


def test_a_measurement_that_raises_becomes_one_error_row_naming_the_error() -> None:
    def broken() -> list[Row]:
        raise RuntimeError("the sampler saw no version")

    rows = measured(4, "Events: the read model behind", broken)

    assert [(row.item, row.measure, row.figure, row.status) for row in rows] == [
        (4, "Events: the read model behind", None, "error")
    ]
    assert rows[0].detail == "error: RuntimeError('the sampler saw no version')"


def test_a_measurement_that_works_gives_its_own_rows() -> None:
    row = Row(4, "Orders: p50 latency", 170.0, "ms", "none set", "info")

    assert measured(4, "Orders", lambda: [row]) == [row]


def test_the_p99_of_samples_stays_within_their_range() -> None:
    assert p99(range(1, 101)) == pytest.approx(99.01)
    assert p99([5.0, 7.0]) == pytest.approx(6.98)
