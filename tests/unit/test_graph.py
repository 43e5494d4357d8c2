"""`journeys graph`: Mermaid, SVG and HTML drawings of a workflow."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from journeys.compiler import graph, ir
from journeys.compiler import models as m
from journeys.compiler.pipeline import compile_paths

ROOT = Path(__file__).resolve().parents[2]
CART = ROOT / "workflows" / "cart-abandonment.yaml"
SVG = "{http://www.w3.org/2000/svg}"
AWKWARD = 'Welcome [email] "v2" #1 & <b>{x}</b> | `y` (z)'

LOOP: dict[str, Any] = {
    "id": "onboarding",
    "name": "Onboarding & <nudges>",
    "description": "Nudge until the welcome email is opened.",
    "trigger": [{"event": "signed_up"}, {"tag_added": "trial"}],
    "settings": {"time_zone": "Europe/Paris"},
    "exit": [{"label": "Churned", "segment": "churned"}],
    "steps": [
        {"type": "send_email", "id": "welcome", "label": AWKWARD, "template": "welcome"},
        {"type": "wait", "id": "pause", "label": "Wait a day", "for": "1 day"},
        {
            "type": "decision",
            "label": "Opened the welcome email?",
            "condition": {"opened": "welcome"},
            "yes": [{"type": "goto", "step": "offer"}],
            "no": [
                {"type": "send_sms", "label": "SMS nudge", "template": "nudge"},
                {"type": "goto", "step": "pause", "max_times": 3, "label": "Try again"},
            ],
        },
        {
            "type": "wait_for_event",
            "label": "Clicked within a day?",
            "event": "clicked",
            "timeout": "1 day",
        },
        {
            "type": "ab_split",
            "id": "offer",
            "label": "Offer test",
            "variants": [
                {"label": "A", "weight": 45, "steps": [{"type": "end", "label": "Offer A"}]},
                {"label": "B", "weight": 45},
            ],
            "holdout": {"weight": 10, "measure_for": "7 days"},
        },
        {"type": "end", "label": "Done"},
    ],
}


def journey_of(data: dict[str, Any]) -> ir.Journey:
    return ir.build_journey(m.Workflow.model_validate(data), "test.yaml")


@pytest.fixture(scope="module")
def cart() -> ir.Journey:
    (result,) = compile_paths([CART])
    assert result.ok and result.journey is not None, result.diagnostics
    return result.journey


def drawn_boxes(svg_text: str) -> dict[str, str]:
    """data-key -> the label as drawn (wrapped lines joined again)."""
    root = ET.fromstring(svg_text)
    return {
        g.attrib["data-key"]: " ".join(t.text or "" for t in g.findall(f"{SVG}text")[0])
        for g in root.iter(f"{SVG}g")
        if "data-key" in g.attrib
    }


def test_mermaid_has_every_step_the_trigger_the_goal_and_the_yes_no_edges(
    cart: ir.Journey,
) -> None:
    text = graph.render(cart, "mermaid")
    assert text.startswith("flowchart TD\n")
    for node in cart.nodes.values():
        assert f'"{graph.mermaid_text(node.label)}"' in text
    assert 'start(["When: added_to_cart"])' in text
    assert "Goal: Checked out — ends the journey wherever the contact is" in text
    assert "Exit: Unsubscribed" in text
    assert 'n_checked_out_within_2_h -->|"Yes"| n_bought' in text
    assert 'n_cart_still_has_items -->|"No"| n_cart_emptied' in text
    assert 'n_reachable_by_email -->|"Yes"| n_cart_email' in text
    assert "n_cart_email --> n_reminded" in text
    assert "n_checked_out_within_2_h{" in text and "n_bought(((" in text


def test_svg_is_xml_and_draws_every_step_once(cart: ir.Journey) -> None:
    boxes = drawn_boxes(graph.render(cart, "svg"))
    assert boxes.pop(graph.START) == "When: added_to_cart"
    assert boxes == {key: node.label for key, node in cart.nodes.items()}


def test_output_is_deterministic_even_across_hash_seeds(cart: ir.Journey) -> None:
    for fmt in ("mermaid", "svg", "html"):
        assert graph.render(cart, fmt) == graph.render(cart, fmt)
    code = (
        "import sys; from journeys.compiler import graph; "
        "from journeys.compiler.pipeline import compile_paths; "
        f"sys.stdout.write(graph.render(compile_paths([{str(CART)!r}])[0].journey, 'html'))"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONIOENCODING": "utf-8"},
            capture_output=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(runs) == 1


def test_awkward_labels_are_escaped_in_every_format() -> None:
    journey = journey_of(LOOP)
    mermaid = graph.render(journey, "mermaid")
    line = next(line for line in mermaid.splitlines() if line.startswith("  n_welcome"))
    assert line == (
        '  n_welcome["Welcome #91;email#93; #quot;v2#quot; #35;1 #38; #60;b#62;#123;x#125;'
        '#60;/b#62; #124; #96;y#96; #40;z#41;"]'
    )
    assert drawn_boxes(graph.render(journey, "svg"))["welcome"] == AWKWARD
    page = graph.render(journey, "html")
    assert "<b>{x}</b>" not in page and "<nudges>" not in page
    assert "Onboarding &amp; &lt;nudges&gt;" in page


def test_a_bounded_loop_and_a_plain_goto_render() -> None:
    journey = journey_of(LOOP)
    mermaid = graph.render(journey, "mermaid")
    assert 'n_try_again{{"Try again"}}' in mermaid
    assert 'n_try_again -.->|"again, up to 3×"| n_pause' in mermaid
    assert 'n_try_again -->|"after 3×"| n_clicked_within_a_day' in mermaid
    # Both answers lead on to the next step: one edge, not two drawn on top of each other.
    assert 'n_clicked_within_a_day -->|"Yes / No"| n_offer' in mermaid
    # The plain goto is not a box: its decision jumps straight to the target, dashed.
    assert 'n_opened_the_welcome_email -.->|"Yes · goto"| n_offer' in mermaid
    assert 'n_offer -->|"A #40;45%#41;"| n_offer_a' in mermaid
    assert "Exit: Churned" in mermaid and "When: signed_up or tag added: trial" in mermaid
    svg = graph.render(journey, "svg")
    boxes = drawn_boxes(svg)
    assert "Try again" in boxes.values() and "goto-offer" not in boxes
    root = ET.fromstring(svg)
    dashed = [p for p in root.iter(f"{SVG}path") if p.get("stroke-dasharray")]
    assert {p.get("stroke") for p in dashed} == {"#ea580c", "#475569"}  # loop, goto


def test_boxes_never_overlap_and_loops_point_back_up() -> None:
    diagram = graph.diagram(journey_of(LOOP))
    lay = graph.layout(diagram)
    rects = [
        (lay.x[k] - w / 2, lay.y[k] - h / 2, lay.x[k] + w / 2, lay.y[k] + h / 2)
        for k, (w, h) in lay.size.items()
        if k in diagram.boxes
    ]
    for a, b in itertools.combinations(rects, 2):
        assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
    (loop,) = [points for _, points, is_loop in lay.paths if is_loop]
    assert loop[-1][1] < loop[0][1]


def test_html_page_is_standalone(cart: ir.Journey) -> None:
    page = graph.render(cart, "html")
    assert page.startswith("<!doctype html>")
    for expected in (
        "<h1>Cart abandonment</h1>",
        "Win back shoppers who leave items in their cart.",
        "<dt>Trigger</dt><dd>added_to_cart</dd>",
        "<dd>3 messages per 1 day, all workflows</dd>",
        "<svg xmlns=",
        "<details>",
        "flowchart TD",
    ):
        assert expected in page
    for fetched in ("<script", "<link", "src=", "href=", "@import", "url(http"):
        assert fetched not in page


def test_unknown_format_is_refused(cart: ir.Journey) -> None:
    with pytest.raises(ValueError, match="unknown graph format"):
        graph.render(cart, "png")


def test_goal_follow_up_steps_hang_off_their_own_start() -> None:
    goal = {
        "label": "Bought",
        "event": "purchase",
        "then": [{"type": "send_email", "label": "Thank you", "template": "thanks"}],
    }
    steps = [{"type": "wait", "label": "Wait a day", "for": "1 day"}, {"type": "end"}]
    data = {"id": "x", "name": "x", "trigger": {"event": "e"}, "goal": goal, "steps": steps}
    mermaid = graph.render(journey_of(data), "mermaid")
    assert 'goal(["Goal reached: Bought"])' in mermaid
    assert "goal --> n_thank_you" in mermaid and "Missing" not in mermaid
