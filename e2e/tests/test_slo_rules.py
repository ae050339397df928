"""The fleet's SLO rules (observability/): generated from the objectives, agreeing with them,
accepted by promtool, and firing as the objectives mean (promtool's unit tests)."""

from __future__ import annotations

import re
from typing import Any

import fleet as runner
import pytest
import slo_rules
import yaml

from tests.support.prometheus import promtool

UNIT_TESTS = slo_rules.ROOT / "observability" / "tests" / "slo.test.yml"
# "<ratio><window>{service=...} > (<burn rate> * <budget>)" in an alert's expression.
_LIMIT = re.compile(
    r"service:http_requests_(\w+):ratio_rate(\w+)\{[^}]*\} > \(([\d.]+) \* ([\d.]+)\)"
)
_THRESHOLD = re.compile(r'le="([^"]+)"')


def _objectives() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(slo_rules.SLO_PATH.read_text())
    return loaded


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(slo_rules.RULES_PATH.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_the_rules_file_is_generated_from_the_objectives() -> None:
    rendered = slo_rules.render_rules(slo_rules.load_objectives())

    assert rendered == slo_rules.RULES_PATH.read_text(), "out of date: run 'make slo-rules'"


def test_every_service_of_the_fleet_has_objectives() -> None:
    assert list(_objectives()["services"]) == [service.name for service in runner.SERVICES]


@pytest.mark.parametrize("slo", ["availability", "latency"])
def test_each_alert_fires_at_its_burn_rates_times_the_objectives_budget(slo: str) -> None:
    # Read from both files as they are, without the generator: they must say the same.
    objectives = _objectives()
    ratio = {"availability": "errors", "latency": "slow"}[slo]
    for name, spec in objectives["services"].items():
        budget = round(1 - spec[slo]["objective_percent"] / 100, 10)
        for policy in objectives["burn_rate_alerts"]:
            labels = {"service": name, "slo": slo, "severity": policy["severity"]}
            (alert,) = [rule for rule in _rules() if rule.get("labels") == labels]
            limits = {
                (kind, window, float(burn_rate), round(float(ratio_budget), 10))
                for kind, window, burn_rate, ratio_budget in _LIMIT.findall(alert["expr"])
            }
            assert limits == {
                (ratio, window, float(pair["burn_rate"]), budget)
                for pair in policy["windows"]
                for window in (pair["long"], pair["short"])
            }, f"{name}: {slo}, {policy['severity']}"


def test_the_slow_ratios_count_the_objectives_latency_threshold() -> None:
    for name, spec in _objectives()["services"].items():
        slow = [
            rule
            for rule in _rules()
            if rule.get("record", "").startswith("service:http_requests_slow:")
            and rule["labels"]["service"] == name
        ]
        assert slow
        for rule in slow:
            assert [float(le) for le in _THRESHOLD.findall(rule["expr"])] == [
                spec["latency"]["threshold_seconds"]
            ]


def test_promtool_accepts_the_rules() -> None:
    result = promtool("check", "rules", str(slo_rules.RULES_PATH))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_alerts_fire_as_their_unit_tests_expect() -> None:
    result = promtool("test", "rules", str(UNIT_TESTS))

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_unit_tests_evaluate_every_group_in_the_rules_files_order() -> None:
    unit_tests = yaml.safe_load(UNIT_TESTS.read_text())
    groups = slo_rules.rule_groups(slo_rules.load_objectives())

    assert unit_tests["group_eval_order"] == [group["name"] for group in groups]
