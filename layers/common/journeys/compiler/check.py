"""Check stage: verify an emitted state machine before anyone deploys it.

These are invariants of the compiler, not of the author's workflow: a failure here is a
compiler bug, reported as such rather than as a confusing deploy-time error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from journeys.compiler.emit import SUBSTITUTIONS
from journeys.compiler.ir import MAX_STATE_NAME

MAX_DEFINITION_BYTES = 1_048_576
_SUBSTITUTION = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def _scopes(machine: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield machine
    for state in machine["States"].values():
        for branch in state.get("Branches", []):
            yield from _scopes(branch)
        if "ItemProcessor" in state:
            yield from _scopes(state["ItemProcessor"])


def _targets(state: dict[str, Any]) -> Iterator[str]:
    if "Next" in state:
        yield state["Next"]
    if "Default" in state:
        yield state["Default"]
    for rule in state.get("Choices", []):
        yield rule["Next"]
    for catch in state.get("Catch", []):
        yield catch["Next"]


def check_machine(machine: dict[str, Any]) -> list[str]:
    """Every problem found; an empty list means the machine is sound."""
    problems: list[str] = []
    seen_names: set[str] = set()
    for scope in _scopes(machine):
        states = scope["States"]
        if scope["StartAt"] not in states:
            problems.append(f'StartAt "{scope["StartAt"]}" is not a state')
        for name, state in states.items():
            if name in seen_names:
                problems.append(f'state name "{name}" is used twice')
            seen_names.add(name)
            if len(name) > MAX_STATE_NAME:
                problems.append(f'state name "{name}" is longer than {MAX_STATE_NAME}')
            kind = state["Type"]
            for target in _targets(state):
                if target not in states:
                    problems.append(f'"{name}" goes to "{target}", which is not in its scope')
            terminal = kind in ("Succeed", "Fail", "Choice") or state.get("End") is True
            if not terminal and "Next" not in state:
                problems.append(f'"{name}" has neither Next nor End')
            if kind == "Task" and not state.get("Retry"):
                problems.append(f'Task "{name}" has no Retry')
            if kind == "Choice" and not state.get("Choices"):
                problems.append(f'Choice "{name}" has no rules')
        reached: set[str] = set()
        stack = [scope["StartAt"]]
        while stack:
            name = stack.pop()
            if name in reached or name not in states:
                continue
            reached.add(name)
            stack.extend(_targets(states[name]))
        for name in states:
            if name not in reached:
                problems.append(f'state "{name}" is unreachable')
    text = json.dumps(machine)
    for used in sorted(set(_SUBSTITUTION.findall(text))):
        if used not in SUBSTITUTIONS:
            problems.append(f"unknown substitution ${{{used}}}")
    if len(text.encode()) > MAX_DEFINITION_BYTES:
        problems.append(f"definition is {len(text.encode()):,} bytes; the limit is 1 MiB")
    return problems
