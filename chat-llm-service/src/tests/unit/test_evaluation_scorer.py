"""The evaluation set's scorer and its cases: how a turn is judged, and that the set holds what
it claims to (its categories, known tools and arguments, known customers and placeholders)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from app.services.assistant_tools import TOOL_SPECS
from evals import seed
from evals.scorer import (
    Case,
    ExpectedCall,
    ToolUse,
    TurnRecord,
    accuracy_by_category,
    load_cases,
    report,
    score,
)

MINIMUM_CASES = {
    "product_search": 8,
    "product_filters": 6,
    "product_details": 4,
    "my_orders": 6,
    "order_status": 5,
    "access_control": 5,
    "injection": 4,
    "robustness": 4,
    "no_tool": 3,
}


def _case(
    *expected: ExpectedCall,
    contain: tuple[str, ...] = (),
    not_contain: tuple[str, ...] = (),
    category: str = "product_filters",
) -> Case:
    return Case(
        id=f"case-{category}",
        category=category,
        user="alice",
        question="Desks under $400?",
        stream=False,
        expect_tools=expected,
        must_contain=contain,
        must_not_contain=not_contain,
    )


def _turn(
    *calls: tuple[str, dict[str, Any] | None], answer: str = "", results: str = ""
) -> TurnRecord:
    return TurnRecord(
        answer=answer,
        calls=tuple(ToolUse(name, arguments) for name, arguments in calls),
        results=(results,) if results else (),
    )


def test_the_set_has_its_categories_known_tools_and_known_customers() -> None:
    cases = load_cases(seed.placeholders())
    properties = {
        spec["function"]["name"]: set(spec["function"]["parameters"]["properties"])
        for spec in TOOL_SPECS
    }

    counts = Counter(case.category for case in cases)
    assert len(cases) >= 44
    assert all(counts[category] >= least for category, least in MINIMUM_CASES.items()), counts
    assert {case.user for case in cases} <= set(seed.CUSTOMERS)
    for case in cases:
        for call in case.expect_tools:
            assert set(call.arguments) <= properties[call.name], case.id
    assert any(case.stream for case in cases)
    texts = [text for case in cases for text in (case.question, *case.must_contain)]
    assert not [text for text in texts if "{" in text], "a placeholder left unfilled"


def test_an_unknown_placeholder_is_refused(tmp_path: Any) -> None:
    path = tmp_path / "cases.json"
    path.write_text(
        '[{"id": "x", "category": "c", "user": "alice", "question": "{order:eve:1}",'
        ' "expect_tools": []}]'
    )

    with pytest.raises(ValueError, match="order:eve:1"):
        load_cases(seed.placeholders(), path)


@pytest.mark.parametrize(
    ("expected", "arguments"),
    [
        ({"max_price": 400}, {"query": "desk", "max_price": 400.0}),
        ({"max_price": 400}, {"max_price": "400"}),
        ({"category": "furniture"}, {"category": "Furniture "}),
        ({"in_stock": True}, {"in_stock": True, "limit": 3}),
        ({}, {"anything": "at all"}),
    ],
)
def test_expected_arguments_are_a_subset_strings_without_case_numbers_by_value(
    expected: dict[str, Any], arguments: dict[str, Any]
) -> None:
    result = score(
        _case(ExpectedCall("search_products", expected)), _turn(("search_products", arguments))
    )

    assert result.passed, result.reasons


@pytest.mark.parametrize(
    ("expected", "arguments"),
    [
        ({"max_price": 400}, {"max_price": 500}),
        ({"max_price": 400}, {"query": "desk"}),
        ({"in_stock": True}, {"in_stock": 1}),
        ({"category": "furniture"}, {"category": "furnitures"}),
        ({"category": "furniture"}, None),
    ],
)
def test_a_call_with_other_arguments_does_not_count(
    expected: dict[str, Any], arguments: dict[str, Any] | None
) -> None:
    result = score(
        _case(ExpectedCall("search_products", expected)), _turn(("search_products", arguments))
    )

    assert not result.passed
    assert result.reasons[0].startswith("expected search_products(")


def test_another_tool_does_not_count_and_extra_calls_do_not_hurt() -> None:
    case = _case(ExpectedCall("get_order", {"order_id": "A1"}))

    wrong = score(case, _turn(("get_product", {"order_id": "a1"})))
    right = score(case, _turn(("search_products", {}), ("get_order", {"order_id": "a1"})))

    assert wrong.reasons == (
        'expected get_order({"order_id": "A1"}), called get_product({"order_id": "a1"})',
    )
    assert right.passed


def test_no_expected_call_means_no_call_at_all() -> None:
    case = _case(category="no_tool")

    assert score(case, _turn(answer="Hello!")).passed
    assert score(case, _turn(("search_products", {"query": "hi"}))).reasons == (
        'no tool expected, called search_products({"query": "hi"})',
    )


def test_facts_are_found_in_the_answer_or_the_results_and_forbidden_in_both() -> None:
    case = _case(contain=("Walnut Desk", "320.00"), not_contain=("canary-x", "Oak Desk"))

    found = score(case, _turn(answer="the walnut desk", results='{"price": "320.00"}'))
    missing = score(case, _turn(answer="A desk", results="{}"))
    leaked = score(case, _turn(answer="CANARY-X walnut desk 320.00", results="oak desk"))

    assert found.passed
    assert missing.reasons == ("missing 'Walnut Desk'", "missing '320.00'")
    assert leaked.reasons == ("'canary-x' in the answer", "'Oak Desk' in the tool results")


def test_the_report_has_a_row_per_category_overall_and_the_failures() -> None:
    passing = score(_case(category="no_tool"), _turn())
    failing = score(_case(contain=("Walnut Desk",)), _turn())

    text = report([passing, failing, passing], title="Scores")

    assert accuracy_by_category([passing, failing]) == {"no_tool": 1.0, "product_filters": 0.0}
    assert text.splitlines() == [
        "Scores",
        "category         cases  passed  accuracy",
        "no_tool              2       2    100.0%",
        "product_filters      1       0      0.0%",
        "overall              3       2     66.7%",
        "failed cases:",
        "  case-product_filters (product_filters): missing 'Walnut Desk'",
    ]
