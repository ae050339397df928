"""The stand-ins as ``make run`` starts them: uvicorn processes through the factories that read
the environment, reached over real HTTP; and the LLM test server given rules from a file."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.stand_in_pact import PRODUCT_ID, write_pact

from common_libs.auth import RemoteKeySource, TokenVerifier
from common_libs.testing import LlmControl, UvicornServer, UvicornThread
from common_libs.testing.llm_server import app as llm_app
from common_libs.testing.stand_ins import INFO_PATH, PACT_VARIABLE, set_llm_rules


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stand-ins")


@pytest.fixture(scope="module")
def catalog(logs: Path) -> Iterator[UvicornServer]:
    """The shop's pact served by a uvicorn process, as the runner starts it."""
    server = UvicornServer(
        "common_libs.testing.stand_ins:pact_stand_in_from_environment",
        factory=True,
        env={PACT_VARIABLE: str(write_pact(logs))},
        ready_path=INFO_PATH,
        log_path=logs / "catalog.log",
    )
    with server:
        yield server


def test_a_reservation_is_held_then_committed_by_the_stand_in_process(
    catalog: UvicornServer,
) -> None:
    order_id = str(uuid.uuid4())
    items = [{"product_id": PRODUCT_ID, "quantity": 2}]

    with httpx.Client(base_url=catalog.url, timeout=5) as client:
        held = client.post("/reservations", json={"reservation_id": order_id, "items": items})
        committed = client.post(f"/reservations/{order_id}/commit")

    assert (held.status_code, held.json()["reservation_id"], held.json()["status"]) == (
        201,
        order_id,
        "held",
    )
    assert committed.json() == {"reservation_id": order_id, "status": "committed"}
    log = catalog.log_path.read_text()
    assert "stand-in for shop-provider from shop-consumer's pact" in log
    assert f"example id {PRODUCT_ID}: POST /reservations $.items[0].product_id" in log


async def test_the_token_stand_in_process_serves_tokens_its_jwks_verifies(logs: Path) -> None:
    server = UvicornServer(
        "common_libs.testing.stand_ins:token_stand_in_from_environment",
        factory=True,
        ready_path="/auth/jwks",
        log_path=logs / "tokens.log",
    )
    subject = str(uuid.uuid4())
    with server:
        async with httpx.AsyncClient(base_url=server.url, timeout=5) as client:
            answer = await client.get("/token", params={"role": "admin", "sub": subject})
            keys = RemoteKeySource(server.url + "/auth/jwks", client=client)
            verifier = TokenVerifier(keys, issuer="fleet-user-service", audience="fleet")
            principal = await verifier.verify(answer.json()["access_token"])

    assert (principal.subject, principal.is_admin) == (subject, True)


@pytest.fixture
def llm() -> Iterator[LlmControl]:
    with UvicornThread(llm_app, lifespan="on") as server:
        control = LlmControl(server.url)
        control.reset()
        try:
            yield control
        finally:
            control.reset()


def test_the_llm_test_server_answers_by_the_rules_of_a_file(
    llm: LlmControl, tmp_path: Path
) -> None:
    rules_file = tmp_path / "rules.json"
    rules = [{"name": "grounded", "pattern": r"Products: (\w+)", "target": "conversation"}]
    rules_file.write_text(json.dumps([{**rules[0], "reply": "We have {1}."}]))
    messages = [
        {"role": "system", "content": "Products: shoes"},
        {"role": "user", "content": "What do you sell?"},
    ]

    count = set_llm_rules(llm.url, rules_file)
    answer = httpx.post(
        llm.base_url + "/chat/completions",
        json={"model": "gpt-test", "messages": messages},
        timeout=10,
    )

    assert count == 1
    assert answer.json()["choices"][0]["message"]["content"] == "We have shoes."
    assert [received.rule for received in llm.requests("/v1/chat/completions")] == ["grounded"]
