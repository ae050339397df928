"""findings: a check's failure as a value, so that the test that runs it asserts on it."""

from __future__ import annotations

from common_libs.testing.findings import async_findings, findings


def passes() -> None:
    assert 1 + 1 == 2


def fails() -> None:
    raise AssertionError("the Dockerfile has no USER")


def fails_silently() -> None:
    raise AssertionError


async def passes_later() -> None:
    assert "a".upper() == "A"


async def fails_later() -> None:
    raise AssertionError("ready answered 503")


def test_a_passing_check_finds_nothing() -> None:
    assert findings(passes) == []


def test_a_failing_check_finds_its_message() -> None:
    assert findings(fails) == ["the Dockerfile has no USER"]


def test_a_failure_without_a_message_is_still_found() -> None:
    assert findings(fails_silently) == ["AssertionError()"]


async def test_async_checks_are_found_alike() -> None:
    assert await async_findings(passes_later) == []
    assert await async_findings(fails_later) == ["ready answered 503"]
