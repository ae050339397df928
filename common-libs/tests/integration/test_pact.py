"""The pact kit: a consumer's contract exercised and published, then verified by a real provider."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import httpx
import pytest
from pact import Pact

from common_libs.testing import ServerProcess, free_port
from common_libs.testing.pact import (
    Contract,
    RunningProvider,
    bearer_token,
    break_pact,
    consumer_pacts,
    currency,
    fresh_uuid,
    from_provider_state,
    interaction_count,
    money,
    publish_when_passed,
    uuid_like,
    verify_pacts,
)

SUPPORT_DIR = Path(__file__).resolve().parents[1] / "support"
PRODUCT_ID = "0b7c6d5e-4f3a-4b2c-9d1e-0f1e2d3c4b5a"


def product_exists(pact: Pact) -> None:
    """The consumer reads a product that the provider state made."""
    (
        pact.upon_receiving("a request for a product")
        .given("a product exists")
        .with_request(
            "GET",
            from_provider_state(
                f"/products/{PRODUCT_ID}",
                "/products/${product_id}",
                regex=r"^/products/[0-9a-f-]{36}$",
            ),
        )
        .with_header("Authorization", bearer_token("Bearer consumer-token"))
        .with_header("X-Request-ID", fresh_uuid("5d2e7c1a-9b8f-4e6d-a5c4-b3a291807f6e"))
        .will_respond_with(200)
        .with_body(
            {"id": uuid_like(PRODUCT_ID), "price": money("19.99"), "currency": currency("USD")},
            content_type="application/json",
        )
    )


def other_interaction(pact: Pact) -> None:
    """Not part of the contract below."""
    pact.upon_receiving("something else").with_request("GET", "/other")


def new_contract() -> Contract:
    return Contract("shop-consumer", "shop-provider", [product_exists])


def read_product(base_url: str) -> httpx.Response:
    return httpx.get(
        f"{base_url}/products/{PRODUCT_ID}",
        headers={
            "Authorization": "Bearer consumer-token",
            "X-Request-ID": "5d2e7c1a-9b8f-4e6d-a5c4-b3a291807f6e",
        },
    )


@pytest.fixture(scope="module")
def provider_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The provider app as a uvicorn process; its base URL."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "--app-dir", str(SUPPORT_DIR)]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    log_path = tmp_path_factory.mktemp("pact-provider") / "provider.log"
    base = f"http://127.0.0.1:{port}"
    with ServerProcess([*argv, "pact_provider:app"], log_path=log_path, ready_url=base + "/health"):
        yield base


def trusted(url: str) -> RunningProvider:
    """The provider at ``url``, sent the token it accepts in place of the consumer's."""
    return RunningProvider(
        name="shop-provider", url=url, headers={"Authorization": "Bearer verifier-token"}
    )


@pytest.fixture
def published(tmp_path: Path) -> Path:
    """The consumer's contract, exercised by its test and written to ``tmp_path``."""
    contract = new_contract()
    with contract.serve(product_exists) as url:
        answer = read_product(url)
    assert answer.json() == {"id": PRODUCT_ID, "price": "19.99", "currency": "USD"}
    return contract.write(tmp_path)


def test_a_contract_is_exercised_once_each_interaction_met_the_client() -> None:
    contract = new_contract()
    assert not contract.is_exercised

    with contract.serve(product_exists) as url:
        assert read_product(url).status_code == 200

    assert contract.is_exercised
    assert contract.file_name == "shop-consumer-shop-provider.json"


def test_serving_an_interaction_outside_the_contract_is_refused() -> None:
    with (
        pytest.raises(ValueError, match="other_interaction"),
        new_contract().serve(other_interaction),
    ):
        pass  # pragma: no cover


def test_the_written_pact_holds_every_interaction(published: Path) -> None:
    document = json.loads(published.read_text())

    assert [item["description"] for item in document["interactions"]] == ["a request for a product"]
    assert interaction_count([published]) == 1
    assert consumer_pacts(published.parent, provider="shop-provider") == [published]
    assert consumer_pacts(published.parent, provider="another-provider") == []


def _run_fixture(module: object, *, failures_during: int, directory: Path) -> None:
    session = SimpleNamespace(testsfailed=0)
    request = cast(pytest.FixtureRequest, SimpleNamespace(module=module, session=session))
    steps = publish_when_passed(request, directory=directory)
    next(steps)
    session.testsfailed += failures_during
    with pytest.raises(StopIteration):
        next(steps)


def test_a_contract_is_published_only_when_its_module_passed_whole(tmp_path: Path) -> None:
    exercised = new_contract()
    with exercised.serve(product_exists) as url:
        read_product(url)
    failed_dir, partial_dir, passed_dir, none_dir = (tmp_path / name for name in "fpxn")
    for folder in (failed_dir, partial_dir, passed_dir, none_dir):
        folder.mkdir()

    _run_fixture(SimpleNamespace(CONTRACT=exercised), failures_during=1, directory=failed_dir)
    _run_fixture(SimpleNamespace(CONTRACT=new_contract()), failures_during=0, directory=partial_dir)
    _run_fixture(SimpleNamespace(), failures_during=0, directory=none_dir)
    _run_fixture(SimpleNamespace(CONTRACT=exercised), failures_during=0, directory=passed_dir)

    assert [list(folder.iterdir()) for folder in (failed_dir, partial_dir, none_dir)] == [[]] * 3
    assert [path.name for path in passed_dir.iterdir()] == [exercised.file_name]


def test_the_provider_honours_the_published_pact(provider_url: str, published: Path) -> None:
    verification = verify_pacts([published], provider=trusted(provider_url))

    assert verification.passed, verification.output
    assert len(verification.interactions) == 1


def test_verification_fails_without_the_token_the_provider_accepts(
    provider_url: str, published: Path
) -> None:
    verification = verify_pacts(
        [published], provider=RunningProvider(name="shop-provider", url=provider_url)
    )

    assert not verification.passed


def test_a_broken_pact_fails_verification(
    provider_url: str, published: Path, tmp_path: Path
) -> None:
    broken_dir = tmp_path / "broken"
    broken_dir.mkdir()
    broken = break_pact(published, field="field_never_sent", into=broken_dir)

    verification = verify_pacts([broken], provider=trusted(provider_url))

    assert not verification.passed
    assert "field_never_sent" in verification.output


def test_the_fixture_publishes_a_consumer_modules_contract(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest
        from common_libs.testing.pact import published_contract  # noqa: F401

        @pytest.fixture(scope="session")
        def pacts_dir(pytestconfig):
            return pytestconfig.rootpath / "pacts"
        """
    )
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.mkdir("pacts")
    pytester.makepyfile(
        test_consumer="""
        import httpx
        from common_libs.testing.pact import Contract

        def read_health(pact):
            request = pact.upon_receiving("a health check").with_request("GET", "/health")
            request.will_respond_with(200)

        CONTRACT = Contract("fixture-consumer", "fixture-provider", [read_health])

        def test_reads_health():
            with CONTRACT.serve(read_health) as url:
                assert httpx.get(url + "/health").status_code == 200
        """
    )

    result = pytester.runpytest("-p", "no:cacheprovider")

    result.assert_outcomes(passed=1)
    written = pytester.path / "pacts" / "fixture-consumer-fixture-provider.json"
    assert json.loads(written.read_text())["interactions"][0]["description"] == "a health check"
