"""The Prometheus `make up` runs: it scrapes every service and itself, evaluates the SLO rules and
records them from the requests the fleet answers."""

from __future__ import annotations

import math
import re

import fleet as runner
import httpx
import slo_rules
from common_libs.testing import wait_until

from tests.fleet import Fleet, get
from tests.support.prometheus import promtool, rule_groups, target_health

SCRAPED = {service.name: "up" for service in runner.SERVICES} | {"prometheus": "up"}


def test_promtool_accepts_the_configuration_make_up_rendered(fleet: Fleet) -> None:
    # The rendered file names the rules in the checkout: promtool checks them with it.
    result = promtool("check", "config", str(fleet.data_dir / "prometheus.yml"))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 80 rules found" in result.stdout


def test_prometheus_scrapes_every_service_and_itself(fleet: Fleet) -> None:
    # A target is "unknown" until its first scrape, at most one interval (5 s) after the start.
    wait_until(
        lambda: target_health(fleet.prometheus) == SCRAPED,
        timeout=30,
        interval=0.5,
        message="every target up",
    )
    up = {
        sample["metric"]["service"]: sample["value"][1] for sample in fleet.query('up{job="fleet"}')
    }
    assert up == {service.name: "1" for service in runner.SERVICES}


def test_every_rule_group_is_loaded_and_evaluates_without_errors(fleet: Fleet) -> None:
    expected = [group["name"] for group in slo_rules.rule_groups(slo_rules.load_objectives())]

    def evaluated() -> bool:
        rules = [rule for group in rule_groups(fleet.prometheus) for rule in group["rules"]]
        assert not [rule for rule in rules if rule.get("lastError")]
        # The long windows' groups run once a minute: "unknown" until their first evaluation.
        return all(rule["health"] == "ok" for rule in rules)

    assert sorted(group["name"] for group in rule_groups(fleet.prometheus)) == sorted(expected)
    wait_until(evaluated, timeout=90, interval=1, message="every rule evaluated")


def test_the_recording_rules_follow_requests_through_the_gateway(fleet: Fleet) -> None:
    listings = (
        "http_request_duration_seconds_count"
        '{service="product-catalog-service", route="/products", method="GET"}'
    )
    with httpx.Client(timeout=10) as client:
        assert client.get(f"{fleet.gateway}/api/products").status_code == 200
        # rate() counts what a series gained between two scrapes, not the value a series was
        # first scraped with: when this test runs first, its first request creates the series,
        # so the requests that count come after Prometheus has scraped it once.
        wait_until(lambda: bool(fleet.query(listings)), timeout=30, interval=0.5, message=listings)
        for _ in range(20):
            assert client.get(f"{fleet.gateway}/api/products").status_code == 200

    rate = 'service:http_requests:rate5m{service="product-catalog-service"}'
    # Two scrapes that saw the requests, then an evaluation: about 10 s at 5 s intervals.
    wait_until(lambda: _value(fleet, rate) > 0, timeout=60, interval=0.5, message=rate)
    p99 = _value(
        fleet, 'service:http_request_duration_seconds:p99_5m{service="product-catalog-service"}'
    )
    errors = _value(
        fleet, 'service:http_requests_errors:ratio_rate5m{service="product-catalog-service"}'
    )
    assert 0 < p99 <= 10
    assert 0 <= errors <= 1


def test_each_service_serves_the_bucket_its_latency_objective_counts(fleet: Fleet) -> None:
    objectives = {service.name: service for service in slo_rules.load_objectives().services}
    for service in runner.SERVICES:
        threshold = repr(objectives[service.name].threshold_seconds)
        metrics = get(f"http://127.0.0.1:{fleet.ports[service.port_variable]}/metrics").text
        bucket = rf'^http_request_duration_seconds_bucket\{{[^}}]*le="{re.escape(threshold)}"'
        assert re.search(bucket, metrics, re.MULTILINE), f"{service.name}: no le={threshold}"


def _value(fleet: Fleet, promql: str) -> float:
    """The single sample's value of ``promql`` now (NaN when there is none)."""
    result = fleet.query(promql)
    return float(result[0]["value"][1]) if result else math.nan
