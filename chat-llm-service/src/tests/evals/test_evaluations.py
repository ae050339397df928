"""The evaluation set of the assistant's tools, run against the service as a real process.

The service gets a database and a broker of its own, the session's stub catalog, orders service
and JWKS, and the fixed canary; the seed's products reach its read model as catalog events, its
orders are the stub's. With the test model (the test LLM server answering by ``evals.test_model``'s
rules) every case must pass, and a model that gets the tools wrong must not; with a real model
(``make evals``: ``EVAL_OPENAI_BASE_URL``, ``EVAL_OPENAI_API_KEY``, ``EVAL_CHAT_MODEL``) the
scores are only reported.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from common_libs.testing import (
    LlmServer,
    NatsServer,
    PostgresServer,
    Rule,
    TestTokenIssuer,
    UvicornServer,
    start_nats,
)
from common_libs.testing.db_checks import create_migrated_database

from evals import seed
from evals.scorer import CaseResult, accuracy_by_category, load_cases, report, run_cases
from evals.test_model import RULES, WRONG_RULES
from tests.support.catalog_events import catalog_events
from tests.support.servers import SERVICE_ROOT, CatalogStub, OrdersStub


@dataclass(frozen=True)
class RealModel:
    """The OpenAI-compatible API and model ``make evals`` points the service at."""

    base_url: str
    api_key: str
    model: str
    context_window_tokens: str
    concurrency: int
    timeout_seconds: float

    @classmethod
    def from_environment(cls) -> RealModel | None:
        """The real model the ``EVAL_*`` variables name, or None (the test model, then)."""
        base_url = os.environ.get("EVAL_OPENAI_BASE_URL", "").strip()
        api_key = os.environ.get("EVAL_OPENAI_API_KEY", "").strip()
        if not base_url and not api_key:
            return None
        return cls(
            base_url=base_url or "https://api.openai.com/v1",
            api_key=api_key,
            model=os.environ.get("EVAL_CHAT_MODEL", "").strip() or "gpt-4o-mini",
            context_window_tokens=os.environ.get("EVAL_CONTEXT_WINDOW_TOKENS", "128000"),
            concurrency=int(os.environ.get("EVAL_CONCURRENCY", "1")),
            timeout_seconds=float(os.environ.get("EVAL_TIMEOUT_SECONDS", "180")),
        )


REAL_MODEL = RealModel.from_environment()
# With the test model: at most this many turns at once (the machine is small and shared).
TEST_MODEL_CONCURRENCY = 4

with_the_test_model = pytest.mark.skipif(
    REAL_MODEL is not None, reason="scores of a real model are reported, not asserted"
)


@dataclass(frozen=True)
class EvaluatedService:
    """The service under evaluation: where it listens and the database it writes turns to."""

    url: str
    database_url: str


@pytest.fixture(scope="module")
def evals_database(postgres_server: PostgresServer) -> str:
    """A database of this module alone: its read model holds the seed's products only."""
    return create_migrated_database(
        postgres_server, "chat_service_evals", alembic_ini=SERVICE_ROOT / "alembic.ini"
    )


@pytest.fixture(scope="module")
def evals_broker() -> Iterator[NatsServer]:
    """A broker of this module alone (the read model's durable consumer is one per broker)."""
    with start_nats(prefer_docker=False) as server:
        yield server


@pytest.fixture(scope="module")
def model_environment(request: pytest.FixtureRequest) -> dict[str, str]:
    """The service's LLM settings: the session's test server, or the real model."""
    if REAL_MODEL is None:
        llm: LlmServer = request.getfixturevalue("fake_llm_server")
        return {
            "CHAT_OPENAI_BASE_URL": llm.base_url,
            "CHAT_OPENAI_API_KEY": "sk-evaluation",
            "CHAT_MODEL": "gpt-4o-mini",
        }
    return {
        "CHAT_OPENAI_BASE_URL": REAL_MODEL.base_url,
        "CHAT_OPENAI_API_KEY": REAL_MODEL.api_key,
        "CHAT_MODEL": REAL_MODEL.model,
        "CHAT_CONTEXT_WINDOW_TOKENS": REAL_MODEL.context_window_tokens,
        "CHAT_OPENAI_TIMEOUT_SECONDS": str(REAL_MODEL.timeout_seconds),
    }


@pytest.fixture(scope="module")
async def empty_catalog(catalog_server: CatalogStub) -> CatalogStub:
    """The session's stub catalog without products: the read model's fill finds none."""
    await catalog_server.reset()
    return catalog_server


@pytest.fixture(scope="module")
def service_process(
    evals_database: str,
    evals_broker: NatsServer,
    empty_catalog: CatalogStub,
    orders_server: OrdersStub,
    jwks_url: str,
    model_environment: Mapping[str, str],
    tiktoken_cache_dir: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[EvaluatedService]:
    """The service as a uvicorn process, ready (its read model filled from an empty catalog)."""
    env = {
        "CHAT_ENVIRONMENT": "test",
        "CHAT_DATABASE_URL": evals_database,
        "CHAT_JWKS_URL": jwks_url,
        "NATS_URL": evals_broker.url,
        "CHAT_CATALOG_URL": empty_catalog.base_url,
        "CHAT_CATALOG_TIMEOUT_SECONDS": "0.5",
        "CHAT_ORDERS_URL": orders_server.base_url,
        "CHAT_DAILY_TOKEN_QUOTA": "1000000000",
        "CHAT_SYSTEM_PROMPT_CANARY": seed.CANARY,
        "TIKTOKEN_CACHE_DIR": tiktoken_cache_dir,
        **model_environment,
    }
    log = tmp_path_factory.mktemp("evaluated-service") / "service.log"
    process = UvicornServer(
        "app.main:create_app",
        factory=True,
        cwd=SERVICE_ROOT,
        env=env,
        log_path=log,
        ready_path="/ready",
        log_level=None,
    )
    with process:
        yield EvaluatedService(url=process.url, database_url=evals_database)


@pytest.fixture(scope="module")
async def seeded_service(
    service_process: EvaluatedService, evals_broker: NatsServer
) -> EvaluatedService:
    """The service, its read model holding the seed's products (published as catalog events)."""
    async with catalog_events(evals_broker.url) as events:
        for product in seed.PRODUCTS:
            sequence = await events.created(product)
        await events.wait_handled(sequence)
    return service_process


@pytest.fixture
async def seeded_orders(orders_server: OrdersStub) -> AsyncIterator[None]:
    """The stub orders service holding the seed's orders (and none after the test)."""
    await orders_server.set_orders(seed.ORDERS)
    yield
    await orders_server.reset()


@pytest.fixture
def evaluate(
    seeded_service: EvaluatedService, issuer: TestTokenIssuer
) -> Callable[[], Awaitable[list[CaseResult]]]:
    """Runs the set against the service, each case as its customer, and scores it."""

    def authorize(user: str) -> dict[str, str]:
        return issuer.headers(subject=seed.customer_id(user))

    async def evaluate() -> list[CaseResult]:
        return await run_cases(
            load_cases(seed.placeholders()),
            service_url=seeded_service.url,
            database_url=seeded_service.database_url,
            authorize=authorize,
            concurrency=REAL_MODEL.concurrency if REAL_MODEL else TEST_MODEL_CONCURRENCY,
            timeout_seconds=REAL_MODEL.timeout_seconds + 10 if REAL_MODEL else 30,
        )

    return evaluate


@contextmanager
def _test_model_answering_by(
    request: pytest.FixtureRequest, rules: Sequence[Rule]
) -> Iterator[None]:
    """The session's test server answers by ``rules`` meanwhile (nothing when a real model is
    evaluated); they are cleared after, for the suite's other tests."""
    if REAL_MODEL is not None:
        yield
        return
    llm: LlmServer = request.getfixturevalue("fake_llm_server")
    llm.reset()
    llm.set_rules(*rules)
    try:
        yield
    finally:
        llm.reset()


@pytest.mark.usefixtures("seeded_orders")
async def test_the_set_is_scored_and_the_test_model_passes_every_case(
    evaluate: Callable[[], Awaitable[list[CaseResult]]],
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with _test_model_answering_by(request, RULES):
        results = await evaluate()

    model = REAL_MODEL.model if REAL_MODEL else "the test model"
    with capsys.disabled():
        print("\n" + report(results, title=f"The assistant's tools, evaluated with {model}"))
    if REAL_MODEL is None:  # a real model's scores are reported, never asserted
        assert all(result.passed for result in results), report(results)


@with_the_test_model
@pytest.mark.usefixtures("seeded_orders")
async def test_a_model_that_gets_the_tools_wrong_scores_below_full_marks(
    evaluate: Callable[[], Awaitable[list[CaseResult]]], request: pytest.FixtureRequest
) -> None:
    with _test_model_answering_by(request, WRONG_RULES):
        results = await evaluate()

    accuracy = accuracy_by_category(results)
    wrong = (
        "product_filters",
        "my_orders",
        "order_status",
        "access_control",
        "injection",
        "no_tool",
    )
    assert all(accuracy[category] < 1 for category in wrong), accuracy
    # What it does right still scores: the scorer fails the categories concerned, not all.
    assert accuracy["product_search"] == accuracy["product_details"] == 1, report(results)
