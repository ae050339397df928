"""Rows of the result (figure, target, pass/miss) and the two files they are written to."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Row", "at_least", "at_most", "below", "median", "none_of", "say", "write_results"]


def say(message: str) -> None:
    """A progress line of the benchmark."""
    print(f"bench | {message}", flush=True)


def median(values: Iterable[float]) -> float:
    """The median (of the runs of one figure)."""
    return float(statistics.median(list(values)))


def p99(values: Iterable[float]) -> float:
    """The 99th percentile of samples (inclusive: within the samples' own range)."""
    return statistics.quantiles(list(values), n=100, method="inclusive")[98]


@dataclass
class Row:
    """One line of the table: what was measured, the figure, its target and the verdict.

    ``status`` is ``pass`` or ``miss`` when there is a target, ``info`` when the issue sets
    none, ``skipped`` or ``error`` when the figure could not be measured (``detail`` says why).
    """

    item: int
    measure: str
    figure: float | None
    unit: str
    target: str
    status: str
    detail: str = ""
    runs: list[Any] = field(default_factory=list)

    def shown_figure(self) -> str:
        if self.figure is None:
            return "—"
        if not self.unit:
            return f"{self.figure:g}"
        digits = 2 if abs(self.figure) < 10 else 1 if abs(self.figure) < 1000 else 0
        return f"{self.figure:.{digits}f} {self.unit}".strip()


Check = Callable[[float], bool]


def _row(
    item: int, measure: str, figure: float, unit: str, target: str, check: Check | None
) -> Row:
    status = "info" if check is None else "pass" if check(figure) else "miss"
    return Row(item, measure, figure, unit, target, status)


def at_least(item: int, measure: str, figure: float, unit: str, bound: float) -> Row:
    """A row whose figure must reach ``bound``."""
    target = f">= {bound:g} {unit}".strip()
    return _row(item, measure, figure, unit, target, lambda value: value >= bound)


def at_most(item: int, measure: str, figure: float, unit: str, bound: float) -> Row:
    """A row whose figure may not exceed ``bound``."""
    target = f"<= {bound:g} {unit}".strip()
    return _row(item, measure, figure, unit, target, lambda value: value <= bound)


def none_of(item: int, measure: str, count: int) -> Row:
    """A row of a count that must be 0 (errors)."""
    return _row(item, measure, count, "", "0", lambda value: value == 0)


def below(item: int, measure: str, figure: float, unit: str, bound: float) -> Row:
    """A row whose figure must stay under ``bound``."""
    target = f"< {bound:g} {unit}".strip()
    return _row(item, measure, figure, unit, target, lambda value: value < bound)


def measured(item: int, label: str, measure: Callable[[], list[Row]]) -> list[Row]:
    """``measure()``'s rows, or one ``error`` row saying what it raised (the benchmark then
    exits 1, and the rows of the other measurements stand)."""
    try:
        return measure()
    except Exception as exc:
        say(f"{item} {label} failed: {exc!r}")
        return [Row(item, label, None, "", "—", "error", f"error: {exc!r}"[:600])]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(rows: Sequence[Row], context: dict[str, Any]) -> str:
    """The table, with the run's context above it and the figures behind each row below."""
    lines = [
        "# make bench",
        "",
        f"{context['started']}, commit {context['commit']}, {context['cpus']} CPUs, "
        f"load average {context['load_before']} before and {context['load_after']} after; "
        f"{context['fleet']}; {context['method']}; took {context['seconds']:.0f} s.",
        "",
        "| # | measure | figure | target | result |",
        "|---|---|---:|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.item} | {_cell(row.measure)} | {row.shown_figure()} | "
            f"{_cell(row.target)} | {row.status} |"
        )
    lines += ["", "## How each figure was measured", ""]
    for row in rows:
        if row.detail:
            lines.append(f"- **{row.item}. {_cell(row.measure)}**: {row.detail}")
    return "\n".join(lines) + "\n"


def write_results(out_dir: Path, rows: Sequence[Row], context: dict[str, Any]) -> str:
    """Write ``bench.md`` and ``bench.json`` into ``out_dir``; return the Markdown."""
    out_dir.mkdir(parents=True, exist_ok=True)
    text = markdown(rows, context)
    (out_dir / "bench.md").write_text(text)
    payload = {**context, "rows": [asdict(row) for row in rows]}
    for row in payload["rows"]:
        if row["figure"] is not None:
            row["figure"] = round(row["figure"], 4)
    (out_dir / "bench.json").write_text(json.dumps(payload, indent=2) + "\n")
    return text
