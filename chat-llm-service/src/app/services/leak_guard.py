"""The system prompt's canary: a reply that repeats it is cut before the canary reaches anyone.

The system prompt begins with a random marker (``CHAT_SYSTEM_PROMPT_CANARY``, else made at
start-up). A model talked into repeating its instructions (by a customer, or by a product
description written to that end) repeats the marker with them. Every piece of text from the
model passes through a :class:`LeakGuard` on its way to the client and to the conversation: the
text up to the marker goes out, the marker and everything after it never do, the model's call
is stopped, and the reply ends with :data:`WITHHELD_REPLY`. While a reply streams, the guard
holds back the shortest tail that could be the start of the marker, so no part of it leaves
either; the held text goes out as soon as the next piece shows it is not the marker.
"""

from __future__ import annotations

import secrets

from app.config import Settings

__all__ = ["WITHHELD_REPLY", "LeakGuard", "canary_of", "new_canary"]

WITHHELD_REPLY = (
    "I can't share my instructions. I'm happy to help you with products and your orders."
)


def new_canary() -> str:
    """A fresh marker: long and random enough never to occur in a reply by chance."""
    return f"canary-{secrets.token_hex(12)}"


def canary_of(settings: Settings) -> str:
    """The configured canary (replicas may share one), else a new one for this process."""
    configured = settings.system_prompt_canary
    return configured.get_secret_value() if configured is not None else new_canary()


class LeakGuard:
    """Pass a reply's text through, a piece at a time, withholding it from the canary on."""

    def __init__(self, canary: str) -> None:
        self._canary = canary
        self._held = ""
        self.leaked = False

    def feed(self, piece: str) -> str:
        """The text that may go out now (possibly empty); after a leak, nothing more."""
        if self.leaked:
            return ""
        text = self._held + piece
        found = text.find(self._canary)
        if found >= 0:
            self.leaked = True
            self._held = ""
            return text[:found]
        keep = self._partial_marker(text)
        self._held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep]

    def finish(self) -> str:
        """The text still held back, at the end of the reply (it was not the marker)."""
        held, self._held = self._held, ""
        return "" if self.leaked else held

    def _partial_marker(self, text: str) -> int:
        """The length of the longest end of ``text`` that begins the canary."""
        for length in range(min(len(text), len(self._canary) - 1), 0, -1):
            if self._canary.startswith(text[-length:]):
                return length
        return 0

    def whole(self, text: str) -> str:
        """A whole reply, guarded: its text, or its text before the canary and the refusal."""
        safe = self.feed(text) + self.finish()
        return safe + WITHHELD_REPLY if self.leaked else safe
