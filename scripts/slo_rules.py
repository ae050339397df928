"""Prometheus rules for the fleet's objectives, generated from ``observability/slo.yml``.

    make slo-rules      # rewrites observability/rules/slo.rules.yml

    e2e/.venv/bin/python scripts/slo_rules.py --check            # exit 1 when it is out of date
    e2e/.venv/bin/python scripts/slo_rules.py --prometheus-rule  # as the Operator's resource

For each service, from its objectives:

- recording rules ``service:http_requests:rate5m`` (requests per second),
  ``service:http_request_duration_seconds:p99_5m`` (the 99th percentile from the route-aggregated
  buckets), and for every window an alert needs, ``service:http_requests_errors:ratio_rate<w>``
  (5xx / all) and ``service:http_requests_slow:ratio_rate<w>`` (over the latency threshold / all);
  windows up to an hour are evaluated at the global interval, longer ones once a minute (a rate
  over three days is costly, and it moves slowly);
- alerts ``AvailabilityErrorBudgetBurn`` and ``LatencyErrorBudgetBurn``, one per severity, each
  firing while any of its (long, short) window pairs burns faster than its rate.

Every series carries the ``service`` label the scrape configuration gives the service's targets.
Needs PyYAML (e2e's venv has it).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "RULES_PATH",
    "SLO_PATH",
    "Objectives",
    "load_objectives",
    "render_prometheus_rule",
    "render_rules",
    "rule_groups",
]

ROOT = Path(__file__).resolve().parent.parent
SLO_PATH = ROOT / "observability" / "slo.yml"
RULES_PATH = ROOT / "observability" / "rules" / "slo.rules.yml"

HISTOGRAM = "http_request_duration_seconds"
# Windows up to this long are recorded at the global evaluation interval; longer ones less often.
SHORT_WINDOW_LIMIT_SECONDS = 3600
LONG_WINDOW_INTERVAL = "1m"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^(\d+)([smhdw])$")

HEADER = """\
# Generated from observability/slo.yml by scripts/slo_rules.py (`make slo-rules`): edit the
# objectives there, not this file; a test fails when the two differ.
#
"""
PROMETHEUS_RULE_HEADER = """\
# Generated from observability/slo.yml by `scripts/slo_rules.py --prometheus-rule`: generate it
# again whenever the objectives change.
#
"""
LEGEND = """\
# Recording rules, per service (label service):
#   service:http_requests:rate5m                  requests per second (no operational routes)
#   service:http_request_duration_seconds:p99_5m  99th percentile latency (the latency SLI's routes)
#   service:http_requests_errors:ratio_rate<w>    5xx answers / all answers over the window w
#   service:http_requests_slow:ratio_rate<w>      answers slower than the threshold / all, over w
# Alerts: AvailabilityErrorBudgetBurn and LatencyErrorBudgetBurn, labels service, slo, severity.
"""


def window_seconds(window: str) -> int:
    """``"5m"`` -> 300: the Prometheus durations the objectives use (one unit each)."""
    match = _DURATION.match(window)
    if match is None:
        raise ValueError(f"not a duration like 5m, 1h or 3d: {window!r}")
    return int(match.group(1)) * _UNITS[match.group(2)]


@dataclass(frozen=True)
class BurnWindow:
    long: str
    short: str
    burn_rate: float


@dataclass(frozen=True)
class Severity:
    name: str
    windows: tuple[BurnWindow, ...]


@dataclass(frozen=True)
class ServiceObjectives:
    name: str
    availability_percent: float
    latency_percent: float
    threshold_seconds: float
    # Routes outside both indicators, and those outside the latency indicator only.
    excluded_routes: tuple[str, ...]
    latency_excluded_routes: tuple[str, ...]


@dataclass(frozen=True)
class Objectives:
    period: str
    services: tuple[ServiceObjectives, ...]
    severities: tuple[Severity, ...]

    @property
    def windows(self) -> list[str]:
        """Every window an alert reads, shortest first."""
        found = {w for s in self.severities for pair in s.windows for w in (pair.long, pair.short)}
        return sorted(found, key=window_seconds)


def load_objectives(path: Path = SLO_PATH) -> Objectives:
    """The objectives file, read and checked."""
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    excluded = tuple(document["excluded_routes"])
    services = []
    for name, spec in document["services"].items():
        latency = spec["latency"]
        services.append(
            ServiceObjectives(
                name=name,
                availability_percent=float(spec["availability"]["objective_percent"]),
                latency_percent=float(latency["objective_percent"]),
                threshold_seconds=float(latency["threshold_seconds"]),
                excluded_routes=excluded,
                latency_excluded_routes=excluded + tuple(latency.get("excluded_routes", ())),
            )
        )
    severities = tuple(
        Severity(
            name=entry["severity"],
            windows=tuple(
                BurnWindow(str(w["long"]), str(w["short"]), float(w["burn_rate"]))
                for w in entry["windows"]
            ),
        )
        for entry in document["burn_rate_alerts"]
    )
    objectives = Objectives(str(document["period"]), tuple(services), severities)
    for window in (*objectives.windows, objectives.period):
        window_seconds(window)
    for service in objectives.services:
        for percent in (service.availability_percent, service.latency_percent):
            if not 0 < percent < 100:
                raise ValueError(f"{service.name}: an objective must lie between 0 and 100 %")
    return objectives


# --- PromQL ---------------------------------------------------------------------------------------


def _number(value: float) -> str:
    """A number for PromQL and for people: ``0.25``, ``14.4``, ``6`` (no ``6.0``)."""
    text = repr(float(value))
    return text.removesuffix(".0")


def _le(seconds: float) -> str:
    """A bucket's ``le`` label as prometheus_client writes it (``0.25``, ``1.0``)."""
    return repr(float(seconds))


def _routes_regex(routes: Iterable[str]) -> str:
    """An RE2 alternation of literal paths, escaped for a PromQL double-quoted string."""
    return "|".join(re.escape(route) for route in routes).replace("\\", "\\\\")


def _selector(service: str, routes: Iterable[str], *extra: str) -> str:
    matchers = [f'service="{service}"', f'route!~"{_routes_regex(routes)}"', *extra]
    return "{" + ", ".join(matchers) + "}"


def _rate(metric: str, selector: str, window: str, by: str = "service") -> str:
    return f"sum by ({by}) (rate({metric}{selector}[{window}]))"


def error_ratio(service: ServiceObjectives, window: str) -> str:
    """5xx answers over all answers (both without the excluded routes).

    A service that has never answered 5xx has no such series at all: ``or`` the answers times 0
    makes the ratio 0 then, rather than no value (there is none only without any answer).
    """
    count = f"{HISTOGRAM}_count"
    errors = _rate(count, _selector(service.name, service.excluded_routes, 'status=~"5.."'), window)
    answers = _rate(count, _selector(service.name, service.excluded_routes), window)
    return f"(\n  {errors}\n  or\n  {answers} * 0\n)\n/\n{answers}\n"


def slow_ratio(service: ServiceObjectives, window: str) -> str:
    """Answers slower than the threshold over all answers: 1 - (within the threshold / all)."""
    routes = service.latency_excluded_routes
    within = _selector(service.name, routes, f'le="{_le(service.threshold_seconds)}"')
    answers = _selector(service.name, routes)
    fast = _rate(f"{HISTOGRAM}_bucket", within, window)
    return f"1 - (\n  {fast}\n  /\n  {_rate(f'{HISTOGRAM}_count', answers, window)}\n)\n"


def _recording(service: ServiceObjectives, record: str, expr: str) -> dict[str, Any]:
    # The expression keeps the service label already; stated, it also tells promtool (and a
    # reader) that the four services' rules of one name record different series.
    return {"record": record, "expr": expr, "labels": {"service": service.name}}


def recording_rules(service: ServiceObjectives, windows: Iterable[str]) -> list[dict[str, Any]]:
    """Both ratios for each of ``windows``."""
    rules = []
    for window in windows:
        errors = error_ratio(service, window)
        slow = slow_ratio(service, window)
        rules.append(
            _recording(service, f"service:http_requests_errors:ratio_rate{window}", errors)
        )
        rules.append(_recording(service, f"service:http_requests_slow:ratio_rate{window}", slow))
    return rules


def overview_rules(service: ServiceObjectives) -> list[dict[str, Any]]:
    """The request rate and the 99th percentile over 5 minutes."""
    answers = _selector(service.name, service.excluded_routes)
    buckets = _selector(service.name, service.latency_excluded_routes)
    rate = _rate(f"{HISTOGRAM}_count", answers, "5m") + "\n"
    p99 = (
        f"histogram_quantile(0.99, {_rate(f'{HISTOGRAM}_bucket', buckets, '5m', 'service, le')})\n"
    )
    return [
        _recording(service, "service:http_requests:rate5m", rate),
        _recording(service, "service:http_request_duration_seconds:p99_5m", p99),
    ]


@dataclass(frozen=True)
class _Slo:
    name: str  # the slo label: availability or latency
    alert: str
    ratio: str  # the recorded ratio's name without its window
    percent: float  # the objective
    counted: str  # what the ratio counts, for the annotations
    good: str  # what the objective promises, for the annotations

    @property
    def budget(self) -> str:
        """The error budget as a ratio: 99.5 % -> ``0.005``."""
        return _number(round(1 - self.percent / 100, 10))


def _slos(service: ServiceObjectives) -> tuple[_Slo, _Slo]:
    threshold_ms = _number(service.threshold_seconds * 1000)
    return (
        _Slo(
            "availability",
            "AvailabilityErrorBudgetBurn",
            "service:http_requests_errors:ratio_rate",
            service.availability_percent,
            "were answered with a 5xx status",
            "answered without a 5xx status",
        ),
        _Slo(
            "latency",
            "LatencyErrorBudgetBurn",
            "service:http_requests_slow:ratio_rate",
            service.latency_percent,
            f"took longer than {threshold_ms} ms",
            f"answered within {threshold_ms} ms",
        ),
    )


def _alert(
    service: ServiceObjectives, slo: _Slo, severity: Severity, objectives: Objectives
) -> dict[str, Any]:
    selector = f'{{service="{service.name}"}}'
    pairs = []
    for pair in severity.windows:
        limit = f"({_number(pair.burn_rate)} * {slo.budget})"
        pairs.append(
            f"(\n  {slo.ratio}{pair.long}{selector} > {limit}\n"
            f"  and\n  {slo.ratio}{pair.short}{selector} > {limit}\n)"
        )
    burns = ", or ".join(
        f"{_number(p.burn_rate)}x over {p.long} and {p.short}" for p in severity.windows
    )
    objective = _number(slo.percent)
    return {
        "alert": slo.alert,
        "expr": "\nor\n".join(pairs) + "\n",
        "labels": {"service": service.name, "severity": severity.name, "slo": slo.name},
        "annotations": {
            "summary": f"{service.name} spends its {slo.name} error budget too fast ({burns})",
            "description": f"{{{{ $value | humanizePercentage }}}} of {service.name}'s requests "
            f"{slo.counted} over the alert's long window. Objective: {objective} % "
            f"{slo.good} over {objectives.period}. Query {slo.ratio}5m{selector} (or _rate1h, "
            "...) to follow it.",
        },
    }


def alert_rules(service: ServiceObjectives, objectives: Objectives) -> list[dict[str, Any]]:
    """One alert per indicator and severity: any of its window pairs burning too fast."""
    return [
        _alert(service, slo, severity, objectives)
        for slo in _slos(service)
        for severity in objectives.severities
    ]


def rule_groups(objectives: Objectives) -> list[dict[str, Any]]:
    """Three groups per service: its short windows, its long windows, its alerts."""
    short = [w for w in objectives.windows if window_seconds(w) <= SHORT_WINDOW_LIMIT_SECONDS]
    long = [w for w in objectives.windows if window_seconds(w) > SHORT_WINDOW_LIMIT_SECONDS]
    groups: list[dict[str, Any]] = []
    for service in objectives.services:
        groups.append(
            {
                "name": f"{service.name}-slo-short",
                "rules": overview_rules(service) + recording_rules(service, short),
            }
        )
        if long:
            groups.append(
                {
                    "name": f"{service.name}-slo-long",
                    "interval": LONG_WINDOW_INTERVAL,
                    "rules": recording_rules(service, long),
                }
            )
        groups.append(
            {"name": f"{service.name}-slo-alerts", "rules": alert_rules(service, objectives)}
        )
    return groups


# --- YAML -----------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the expressions) as literal blocks, everything else as usual."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)


def render_rules(objectives: Objectives) -> str:
    """The rules file's text."""
    body = yaml.dump(
        {"groups": rule_groups(objectives)},
        Dumper=_Dumper,
        sort_keys=False,
        width=1000,  # long lines stay whole: one summary, one line
        allow_unicode=True,
    )
    return HEADER + LEGEND + body


def render_prometheus_rule(objectives: Objectives, *, namespace: str = "fleet") -> str:
    """The rules as a PrometheusRule resource, for a Prometheus the Operator runs."""
    resource = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "fleet-slo",
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "fleet"},
        },
        "spec": {"groups": rule_groups(objectives)},
    }
    body = yaml.dump(resource, Dumper=_Dumper, sort_keys=False, width=1000)
    return PROMETHEUS_RULE_HEADER + LEGEND + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the rules are out of date")
    parser.add_argument(
        "--prometheus-rule",
        action="store_true",
        help="print the rules as a PrometheusRule resource (namespace fleet) and write nothing",
    )
    args = parser.parse_args(argv)
    if args.prometheus_rule:
        sys.stdout.write(render_prometheus_rule(load_objectives()))
        return 0
    rendered = render_rules(load_objectives())
    current = RULES_PATH.read_text() if RULES_PATH.exists() else ""
    if args.check:
        if rendered != current:
            print(f"{RULES_PATH.relative_to(ROOT)} is out of date: run 'make slo-rules'")
            return 1
        return 0
    RULES_PATH.parent.mkdir(parents=True, exist_ok=True)
    RULES_PATH.write_text(rendered)
    print(f"wrote {RULES_PATH.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
