"""glibc's mmap threshold: fixed by the service unless the environment already fixes it."""

from __future__ import annotations

import platform

import pytest

from app.security import memory

on_glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")


@on_glibc
def test_threshold_is_fixed_on_glibc() -> None:
    assert memory.pin_malloc_mmap_threshold()


@on_glibc
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MALLOC_MMAP_THRESHOLD_", "1048576"),
        ("GLIBC_TUNABLES", "glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=1048576"),
    ],
)
def test_a_threshold_set_in_the_environment_is_left_in_charge(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)

    def no_mallopt(*args: object) -> None:
        raise AssertionError("mallopt called although the environment sets the threshold")

    monkeypatch.setattr(memory.ctypes, "CDLL", no_mallopt)

    assert memory.pin_malloc_mmap_threshold()


def test_other_c_libraries_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory.platform, "libc_ver", lambda: ("", ""))

    assert not memory.pin_malloc_mmap_threshold()
