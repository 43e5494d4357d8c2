"""The CloudWatch dashboard of template.yaml: valid once CloudFormation substitutes it, and
in step with the metrics the functions emit and the execution names the router gives."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from journeys import router
from tests.helpers.aws import load_template
from tests.helpers.lambdas import load_handler

TEMPLATE = load_template()
#: Functions that emit Powertools metrics; each lists them in METRIC_NAMES.
EMITTERS = ("router", "import_contacts", "stats", "send", "feedback")
_SUB = re.compile(r"\$\{(!?)([^}]*)\}")


def substitute(text: str, template: dict[str, Any]) -> str:
    """Fn::Sub as CloudFormation applies it, with made-up values: ``${!x}`` is the literal
    ``${x}``, every other reference must name a parameter, a resource (``.Attribute``
    too) or a pseudo parameter."""
    known = set(template["Parameters"]) | set(template["Resources"])

    def value(match: re.Match[str]) -> str:
        literal, name = match.groups()
        if literal:
            return "${" + name + "}"
        if not name.startswith("AWS::"):
            assert name.split(".", 1)[0] in known, f"${{{name}}} names nothing in the template"
        return "dummy-" + re.sub(r"[^A-Za-z0-9]", "-", name)

    return _SUB.sub(value, text)


def dashboard() -> dict[str, Any]:
    body = TEMPLATE["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    parsed: dict[str, Any] = json.loads(substitute(body, TEMPLATE))
    return parsed


def expressions(widget: dict[str, Any]) -> list[dict[str, Any]]:
    rows = widget.get("properties", {}).get("metrics", [])
    return [item for row in rows for item in row if isinstance(item, dict) and "expression" in item]


def journeys_metric_names(board: dict[str, Any]) -> set[str]:
    """Metric names the dashboard's SEARCH expressions look for in the Journeys namespace."""
    names: set[str] = set()
    for widget in board["widgets"]:
        for item in expressions(widget):
            for schema, name in re.findall(
                r"SEARCH\('\{(\w+)[^}]*\} MetricName=\"(\w+)\"", item["expression"]
            ):
                if schema == "Journeys":
                    names.add(name)
    return names


@pytest.fixture
def emitted(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Every metric name the functions emit, read from their code."""
    monkeypatch.setenv("IDEMPOTENCY_TABLE", "journeys-idempotency-test")  # read at import
    names: set[str] = set()
    for function in EMITTERS:
        names.update(load_handler(function).METRIC_NAMES)
    return names


def test_the_substituted_body_is_json_with_widgets_inside_the_grid() -> None:
    board = dashboard()
    assert len(board["widgets"]) >= 10
    for widget in board["widgets"]:
        assert widget["x"] + widget["width"] <= 24, widget.get("properties", {}).get("title")
        if widget["type"] == "metric":
            assert widget["properties"]["region"] == "dummy-AWS--Region"


def test_every_metric_the_functions_emit_is_on_the_dashboard(emitted: set[str]) -> None:
    # GIVEN the names in the functions' code, WHEN the dashboard is read,
    # THEN each one is searched for, and the dashboard looks for nothing that is not emitted
    on_dashboard = journeys_metric_names(dashboard())
    assert emitted - on_dashboard == set(), "emitted but not on the dashboard"
    assert on_dashboard - emitted == set(), "on the dashboard but emitted by no function"


def test_the_journey_widgets_search_the_dimensions_the_functions_emit() -> None:
    searches = [
        item["expression"]
        for widget in dashboard()["widgets"]
        for item in expressions(widget)
        if "{Journeys," in item["expression"]
    ]
    schemas = {re.search(r"\{Journeys[^}]*\}", search).group(0) for search in searches}  # type: ignore[union-attr]
    # Per-workflow metrics carry workflow (and Powertools' service); FeedbackSkipped service only.
    assert schemas == {"{Journeys,service,workflow}", "{Journeys,service}"}


def test_metric_math_refers_only_to_ids_of_its_widget() -> None:
    for widget in dashboard()["widgets"]:
        items = expressions(widget)
        ids = [item["id"] for item in items]
        assert len(ids) == len(set(ids)), ids
        for item in items:
            assert re.fullmatch(r"[a-z][A-Za-z0-9_]*", item["id"])
            formula = re.sub(r"SEARCH\('[^']*'[^)]*\)", "", item["expression"])
            for token in re.findall(r"\b[a-z][A-Za-z0-9_]*\b", formula):
                assert token in ids, f"{token} in {item['expression']!r}"


def test_per_workflow_lines_are_labelled_with_the_workflow() -> None:
    labels = [
        item.get("label", "")
        for widget in dashboard()["widgets"]
        for item in expressions(widget)
        if item["expression"].startswith("SEARCH('{Journeys,service,workflow}")
    ]
    assert labels and all("${PROP('Dim.workflow')}" in label for label in labels)


def test_the_text_explains_finding_a_contact_with_the_names_the_router_gives() -> None:
    [text] = [w for w in dashboard()["widgets"] if w["type"] == "text"]
    markdown = text["properties"]["markdown"]
    # The example the text gives is what the router names such a journey.
    example = re.search(r"`(cart-abandonment_[^`]+)`", markdown)
    assert example is not None, markdown
    for event_id in ("evt-1", "ses:0100018f:open"):
        assert router.execution_name("ana@example.com", "cart-abandonment", event_id).startswith(
            example.group(1)
        )
    assert "journeys stats" in markdown
