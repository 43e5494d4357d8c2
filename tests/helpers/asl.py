"""Walk a compiled state machine along chosen branches, the way a contact would.

Tests then read like the reference descriptions: "wait up to 2 h for checkout; on timeout,
check the cart; if it has items, push if reachable, then email".
"""

from __future__ import annotations

from typing import Any

EVENT, TIMEOUT = "event", "timeout"


def journey_states(machine: dict[str, Any]) -> dict[str, Any]:
    """The journey's own states: the first Parallel branch when goal/exits race it."""
    top = machine["States"][machine["StartAt"]]
    if top["Type"] == "Pass" and machine["States"].get(top.get("Next", ""), {}).get("Type") == (
        "Parallel"
    ):
        top = machine["States"][top["Next"]]  # loop counters are set before the race
    if top["Type"] == "Parallel":
        return dict(top["Branches"][0])
    return machine


def walk(
    machine: dict[str, Any], choose: dict[str, str] | None = None, limit: int = 200
) -> list[str]:
    """State names visited from the start of the journey until it ends.

    `choose` maps a Choice state to the rule Comment to take ("Yes", a path or variant
    label) or "Default"; a wait-for-event Task to EVENT or TIMEOUT. Unlisted Choices take
    their Default, unlisted waits TIMEOUT. Retries, deferrals and failures are not taken.
    """
    choose = choose or {}
    scope = journey_states(machine)
    states = scope["States"]
    name = scope["StartAt"]
    visited: list[str] = []
    while name is not None and len(visited) < limit:
        visited.append(name)
        state = states[name]
        kind = state["Type"]
        if kind in ("Succeed", "Fail") or state.get("End"):
            break
        if kind == "Choice":
            wanted = choose.get(name, "Default")
            name = next(
                (
                    rule["Next"]
                    for rule in state["Choices"]
                    if rule.get("Comment", "").startswith(wanted)
                ),
                state["Default"],
            )
        elif kind == "Task" and state["Resource"].endswith(".waitForTaskToken"):
            if choose.get(name, TIMEOUT) == TIMEOUT:
                name = next(
                    c["Next"] for c in state["Catch"] if "States.Timeout" in c["ErrorEquals"]
                )
            else:
                name = state["Next"]
        else:
            name = state.get("Next")
    return visited


def steps_only(names: list[str]) -> list[str]:
    """Drop the helper states the compiler adds ("Check: ...", "Schedule: ...")."""
    prefixes = ("Check: ", "Schedule: ", "Draw: ", "Count: ", "Start journey")
    return [n for n in names if not n.startswith(prefixes)]


def resource(machine: dict[str, Any], name: str) -> str:
    return str(journey_states(machine)["States"][name]["Resource"])
