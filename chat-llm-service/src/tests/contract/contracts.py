"""Consumer contracts with pact-python: interactions defined once, exercised one by one.

A test module holds this service's contract with one provider: ``CONTRACT = Contract(...)``
lists functions that each add one interaction to a ``Pact``, and one test per interaction
drives the real client against Pact's mock server serving just that interaction (the mock
fails the test when the client's request differs from the contract). When a module's tests all
pass, the conftest writes the whole contract to ``pacts/<consumer>-<provider>.json``: the
published contract, which the provider verifies. Its diff is the contract's change.

Matchers pin the shape, not the sample values: ids and money by pattern, other fields by type.
What the provider must hold first (a product to find) is named as a provider state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pact import Pact, match
from pact.match.matcher import AbstractMatcher

__all__ = ["Contract", "Interaction", "currency", "money", "uuid_like"]

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
MONEY_PATTERN = r"^\d+\.\d{2}$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"

Interaction = Callable[[Pact], object]


def uuid_like(example: str) -> AbstractMatcher[str]:
    """Any lower-case UUID (``example`` is what the mock server answers)."""
    return match.regex(example, regex=UUID_PATTERN)


def money(example: str) -> AbstractMatcher[str]:
    """A decimal string with two places, never a number."""
    return match.regex(example, regex=MONEY_PATTERN)


def currency(example: str) -> AbstractMatcher[str]:
    """An ISO 4217 code."""
    return match.regex(example, regex=CURRENCY_PATTERN)


class Contract:
    """This consumer's interactions with one provider."""

    def __init__(self, consumer: str, provider: str, interactions: Sequence[Interaction]) -> None:
        self.consumer = consumer
        self.provider = provider
        self.interactions = tuple(interactions)
        self._exercised: set[Interaction] = set()

    @property
    def file_name(self) -> str:
        """The pact file's name, as Pact names it."""
        return f"{self.consumer}-{self.provider}.json"

    @property
    def is_exercised(self) -> bool:
        """Whether a test has met every interaction (so that a partial run publishes nothing)."""
        return self._exercised.issuperset(self.interactions)

    def _pact(self, *interactions: Interaction) -> Pact:
        pact = Pact(self.consumer, self.provider).with_specification("V4")
        for interaction in interactions:
            interaction(pact)
        return pact

    @contextmanager
    def serve(self, interaction: Interaction) -> Iterator[str]:
        """Pact's mock server with just ``interaction``; yields its base URL.

        Leaving the block fails with the mismatches when the client's requests differ from the
        contract or the interaction was never requested.
        """
        if interaction not in self.interactions:
            raise ValueError(f"{interaction.__name__} is not part of this contract")
        with self._pact(interaction).serve(addr="127.0.0.1") as server:
            yield str(server.url)
        self._exercised.add(interaction)

    def write(self, directory: Path) -> Path:
        """Write the whole contract into ``directory`` (replacing the previous file)."""
        self._pact(*self.interactions).write_file(directory, overwrite=True)
        return directory / self.file_name
