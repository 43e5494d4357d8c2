"""What the marketer's view needs of a compiled workflow: its drawing and how the drawing's
boxes map onto the state machine's states.

Statistics are counted by state name, as the Step Functions console names them (see
`journeys.stats`); the dashboard and `journeys stats` show them per box of the workflow's
graph. One step can become several states (a decision is a `Check:` task and a Choice; a
send under quiet hours also has its `Hold:` wait), so the view lists, per box, every state
it became and the one whose "passed" count is the box's. Decisions also carry which state
each branch enters first, so a contact's timeline can say which way it went.

`journeys compile` writes one view per workflow beside its machine (`<id>.view.json`); the
API reads them at run time, so views are deterministic and committed like the machines.
"""

from __future__ import annotations

import json
from typing import Any

from journeys.compiler import graph, ir

VIEW_SUFFIX = ".view.json"
START, GOAL = graph.START, graph.GOAL

#: Box keys that are not steps: what their "passed" count is instead.
TOTAL_OF_BOX = {START: "entered", GOAL: "goal_reached", ir.GOAL_DONE: "goal_reached"}
#: The outer states that end a journey, by the total that counts them.
ENDINGS = {
    ir.JOURNEY_COMPLETED: "completed",
    ir.JOURNEY_GOAL_REACHED: "goal_reached",
    ir.JOURNEY_EXITED: "exited",
}


def _kind(key: str, journey: ir.Journey) -> str:
    if key == START:
        return "trigger"
    if key in (GOAL, ir.GOAL_DONE):
        return "goal"
    node = journey.nodes.get(key)
    return node.kind if node is not None else "missing"


def _branches(node: ir.Node, journey: ir.Journey) -> dict[str, str]:
    """State first entered after the decision -> the branch's label ("Yes", "B (50%)")."""
    taken: dict[str, str] = {}
    for branch in node.branches:
        if branch.target in (ir.FALL_OFF,) or (
            branch.target not in journey.nodes and branch.target != ir.GOAL_DONE
        ):
            continue
        weight = f" ({branch.weight}%)" if branch.weight is not None else ""
        taken.setdefault(ir.entry_name(branch.target, journey), branch.label + weight)
    if node.next is not None and node.next in journey.nodes:
        taken.setdefault(ir.entry_name(node.next, journey), "Otherwise")
    return taken


def workflow_view(journey: ir.Journey) -> dict[str, Any]:
    """The view of one compiled workflow (JSON-ready, deterministic)."""
    diagram = graph.diagram(journey)
    boxes: list[dict[str, Any]] = []
    for key, box in diagram.boxes.items():
        node = journey.nodes.get(key)
        states = ir.state_names(node, journey) if node is not None else []
        counted = box.label if box.label in states else (states[0] if states else None)
        entry: dict[str, Any] = {
            "key": key,
            "label": box.label,
            "kind": _kind(key, journey),
            "shape": box.shape,
            "states": states,
            "counted_state": counted,
            "total": TOTAL_OF_BOX.get(key),
            "sends": node is not None and node.kind in ir.SEND_KINDS,
        }
        if node is not None and node.kind in graph.DECISIONS:
            entry["branches"] = _branches(node, journey)
        boxes.append(entry)
    workflow = journey.workflow
    return {
        "workflow_id": workflow.id,
        "name": workflow.name,
        "description": workflow.description or "",
        "svg": graph.svg(diagram, workflow.name),
        "boxes": boxes,
        "endings": ENDINGS,
        "watch_prefix": ir.watch_name(""),
    }


def render_view(journey: ir.Journey) -> str:
    return json.dumps(workflow_view(journey), indent=1, ensure_ascii=False, sort_keys=True) + "\n"
