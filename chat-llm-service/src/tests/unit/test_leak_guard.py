"""The canary guard: text before the marker goes out, the marker and what follows never do,
however the reply is cut into pieces."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.services.leak_guard import WITHHELD_REPLY, LeakGuard, canary_of, new_canary
from tests.conftest import make_settings

CANARY = "canary-0123456789abcdef01234567"


def _pieces(text: str, cuts: list[int]) -> list[str]:
    points = sorted({0, len(text), *(cut % (len(text) + 1) for cut in cuts)})
    return [text[start:end] for start, end in itertools.pairwise(points)]


@settings(max_examples=300, deadline=None)
@given(
    before=st.text(alphabet="abc -canry0123", max_size=40),
    after=st.text(max_size=40),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=12),
    leaks=st.booleans(),
)
def test_pieces_give_the_text_before_the_canary_and_nothing_of_it(
    before: str, after: str, cuts: list[int], leaks: bool
) -> None:
    text = before + (CANARY if leaks else "") + after
    guard = LeakGuard(CANARY)

    sent = [guard.feed(piece) for piece in _pieces(text, cuts)]
    sent.append(guard.finish())
    out = "".join(sent)

    if CANARY in text:
        assert out == text[: text.index(CANARY)]
        assert guard.leaked
    else:
        assert out == text
        assert not guard.leaked
    # Never more than the canary's first characters could show before it is recognised: none.
    assert CANARY not in out
    for piece in sent:
        assert CANARY not in piece


def test_a_possible_start_of_the_canary_is_held_until_the_next_piece_shows_it_is_not() -> None:
    guard = LeakGuard(CANARY)

    assert guard.feed("See the can") == "See the "
    assert guard.feed("dle.") == "candle."
    assert guard.feed(" canary-01") == " "
    assert guard.finish() == "canary-01"


def test_a_whole_reply_is_cut_at_the_canary_and_ends_with_the_refusal() -> None:
    guard = LeakGuard(CANARY)

    assert guard.whole(f"Sure! My instructions: {CANARY} You are...") == (
        "Sure! My instructions: " + WITHHELD_REPLY
    )
    assert guard.feed("more") == ""
    assert guard.finish() == ""


def test_the_canary_is_configured_or_new_for_each_process() -> None:
    configured = make_settings(system_prompt_canary="canary-from-settings-1234")

    assert canary_of(configured) == "canary-from-settings-1234"
    made = canary_of(make_settings())
    assert made.startswith("canary-")
    assert len(made) == len(new_canary()) >= 30
    assert made != canary_of(make_settings())


def test_a_short_canary_is_refused() -> None:
    with pytest.raises(ValueError, match="system_prompt_canary"):
        make_settings(system_prompt_canary="short")
