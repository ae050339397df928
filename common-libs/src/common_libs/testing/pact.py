"""Consumer-driven contracts with pact-python, both sides (``common-libs[testing,pact]``).

Consumer side: a test module holds its contract with one provider, ``CONTRACT = Contract(...)``,
a list of functions that each add one interaction to a ``Pact``; one test per interaction drives
the real client against Pact's mock server serving just that interaction (the mock fails the
test when the client's request differs from the contract). When a module's tests all pass,
:func:`publish_when_passed` writes the whole contract to ``pacts/<consumer>-<provider>.json``:
the published contract, which the provider verifies. Its diff is the contract's change.

Matchers pin the shape, not the sample values: ids, money and tokens by pattern, other fields by
type. Values the provider must make first (a product, a held reservation) come from its provider
state and are injected into the request when the provider verifies the pact.

Provider side: :func:`verify_pacts` replays every interaction of the consumers' pacts against the
real service process, each after its provider state was set up through the service's own
provider-state endpoint.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pact import Pact, Verifier, generate, match
from pact.match.matcher import AbstractMatcher, GenericMatcher

__all__ = [
    "Contract",
    "Interaction",
    "RunningProvider",
    "Verification",
    "bearer_token",
    "break_pact",
    "consumer_pacts",
    "currency",
    "fresh_uuid",
    "from_provider_state",
    "interaction_count",
    "money",
    "publish_when_passed",
    "published_contract",
    "uuid_like",
    "verify_pacts",
]

# pact-python's library would otherwise report usage to the Pact Foundation: no network in tests.
os.environ.setdefault("PACT_DO_NOT_TRACK", "true")

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
MONEY_PATTERN = r"^\d+\.\d{2}$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"
BEARER_PATTERN = r"^Bearer .+$"

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


def bearer_token(example: str) -> AbstractMatcher[str]:
    """``Authorization``: any bearer token (the provider's verification supplies a real one)."""
    return match.regex(example, regex=BEARER_PATTERN)


def fresh_uuid(example: str) -> AbstractMatcher[str]:
    """A UUID the consumer makes up: a new one each time the provider verifies the pact."""
    return GenericMatcher("regex", example, regex=UUID_PATTERN, generator=generate.uuid())


def from_provider_state(
    example: str, expression: str, *, regex: str = UUID_PATTERN
) -> AbstractMatcher[str]:
    """A value the provider state made (``${name}`` in ``expression``), ``example`` here."""
    return GenericMatcher(
        "regex", example, regex=regex, generator=generate.provider_state(expression)
    )


class Contract:
    """One consumer's interactions with one provider."""

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


def publish_when_passed(request: pytest.FixtureRequest, *, directory: Path) -> Iterator[None]:
    """The body of a module fixture: write the module's ``CONTRACT`` once its tests all passed.

    A failing or partial run (an interaction no test met) leaves the published file as it was.
    """
    contract = getattr(request.module, "CONTRACT", None)
    failures_before = request.session.testsfailed
    yield
    if (
        isinstance(contract, Contract)
        and contract.is_exercised
        and request.session.testsfailed == failures_before
    ):
        contract.write(directory)


@pytest.fixture(scope="module", autouse=True)
def published_contract(request: pytest.FixtureRequest, pacts_dir: Path) -> Iterator[None]:
    """Write the test module's ``CONTRACT`` into ``pacts_dir`` once its tests have all passed.

    A consumer's ``tests/contract/conftest.py`` imports this fixture and defines ``pacts_dir``.
    """
    yield from publish_when_passed(request, directory=pacts_dir)


@dataclass(frozen=True)
class RunningProvider:
    """A provider process under verification.

    ``headers`` replace the consumers' own when the verifier replays their requests: a pact
    matches ``Authorization`` by pattern only, and the verifier sends a token the provider
    accepts in its place.
    """

    name: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def provider_states_url(self) -> str:
        """Where the verifier posts each interaction's provider state (the provider's own route)."""
        return self.url + "/_pact/provider-states"


@dataclass(frozen=True)
class Verification:
    """What the pact verifier found."""

    passed: bool
    output: str
    interactions: list[dict[str, Any]]


def consumer_pacts(directory: Path, *, provider: str) -> list[Path]:
    """The pact files of ``provider``'s consumers in ``directory`` (copies of their pacts)."""
    return sorted(directory.glob(f"*-{provider}.json"))


def interaction_count(pacts: Sequence[Path]) -> int:
    """How many interactions ``pacts`` hold."""
    return sum(len(json.loads(pact.read_text())["interactions"]) for pact in pacts)


def verify_pacts(pacts: Sequence[Path], *, provider: RunningProvider) -> Verification:
    """Replay every interaction of ``pacts`` against ``provider``, each after its state is set."""
    verifier = (
        Verifier(provider.name, host="127.0.0.1")
        .add_transport(url=provider.url)
        .state_handler(provider.provider_states_url, body=True)
        .set_coloured_output(enabled=False)
    )
    for name, value in provider.headers.items():
        verifier.add_custom_header(name, value)
    for pact in pacts:
        verifier.add_source(pact)
    try:
        verifier.verify()
    except RuntimeError:
        passed = False
    else:
        passed = True
    results = verifier.results
    return Verification(
        passed=passed and bool(results["result"]),
        output=verifier.output(strip_ansi=True),
        interactions=results["interactionResults"],
    )


def break_pact(pact: Path, *, field: str, into: Path) -> Path:
    """A copy of ``pact`` in folder ``into`` whose first JSON answer expects ``field`` as well.

    A provider that never sends ``field`` must fail to verify it: proof that verification can
    fail at all.
    """
    broken = json.loads(pact.read_text())
    expected_body = next(
        interaction["response"]["body"]["content"]
        for interaction in broken["interactions"]
        if isinstance(interaction["response"].get("body", {}).get("content"), dict)
    )
    expected_body[field] = "anything"
    target = into / pact.name
    target.write_text(json.dumps(broken))
    return target
