"""Chat turns and what the OpenAI-compatible test server received for them."""

from __future__ import annotations

import random
import string
import time
from collections.abc import Callable
from dataclasses import dataclass

from common_libs.testing import LlmServer, Received

from tests.support.shop import Account, Shop, bearer


def made_up_word(length: int = 10) -> str:
    """A word no product has yet, for names the assistant's search must find."""
    return "".join(random.choices(string.ascii_lowercase, k=length))  # noqa: S311 - not a secret


def chat_request_about(fake_llm: LlmServer, question: str) -> Received:
    """The (last) completion request the chat service sent for ``question``."""
    matching = [
        received
        for received in fake_llm.requests("/v1/chat/completions")
        if received.message_texts() and received.message_texts()[-1] == question
    ]
    assert matching, f"the LLM never received {question!r}"
    return matching[-1]


@dataclass(frozen=True)
class Turn:
    """One chat turn: when it was sent (monotonic seconds) and the prompt the LLM received."""

    sent_at: float
    prompt: str


def ask(shop: Shop, fake_llm: LlmServer, account: Account, question: str) -> Turn:
    """Send ``question`` as a new conversation; the LLM's whole prompt as one text."""
    sent_at = time.monotonic()
    answer = shop.client.post(
        f"{shop.endpoints.chat}/chat/generate_response",
        json={"message": question},
        headers=bearer(account.access_token),
    )
    assert answer.status_code == 200, answer.text
    return Turn(sent_at, "\n".join(chat_request_about(fake_llm, question).message_texts()))


def first_turn_where(
    shop: Shop,
    fake_llm: LlmServer,
    account: Account,
    question: str,
    condition: Callable[[str], bool],
    *,
    timeout: float = 10.0,
) -> Turn:
    """Ask ``question`` again and again until the prompt meets ``condition``; that turn."""
    deadline = time.monotonic() + timeout
    while True:
        turn = ask(shop, fake_llm, account, question)
        if condition(turn.prompt):
            return turn
        assert time.monotonic() < deadline, f"no turn met the condition within {timeout:g} s"
