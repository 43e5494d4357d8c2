"""The intermediate form: a workflow as a flat, frozen graph of nodes.

Nested branches are how people write simple flows; jumps are how they write graphs. Both
become the same thing here: every step is a `Node` with the key of the node that follows
it and, for branching steps, one `Branch` per path. A branch that does not end falls
through to the step after its parent, exactly as it reads in YAML. Falling off the end of
the top-level steps leads to `FALL_OFF`, which validation reports as a path with no end.

State names are decided here (not in the emitter) so that validation can check their
length and uniqueness against the label the author wrote.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from journeys.compiler import models as m
from journeys.compiler.source import Path

FALL_OFF = "<end of steps>"
#: Where the goal's `then` steps lead when they do not end otherwise.
GOAL_DONE = "<goal reached>"
MAX_STATE_NAME = 80

WAIT_KINDS = frozenset({"wait", "wait_until", "wait_for_window", "wait_for_event"})
TERMINAL_KINDS = frozenset({"end", "repeat"})


@dataclass(frozen=True, slots=True)
class Branch:
    label: str
    target: str
    path: Path
    condition: Any = None
    weight: int | None = None


@dataclass(frozen=True, slots=True)
class Node:
    key: str
    kind: str
    label: str
    step: Any
    path: Path
    next: str | None
    branches: tuple[Branch, ...] = ()
    #: The part of the label the author wrote, when the compiler made the rest.
    authored: str | None = None

    @property
    def successors(self) -> tuple[str, ...]:
        targets = [branch.target for branch in self.branches]
        if self.next is not None:
            targets.append(self.next)
        return tuple(dict.fromkeys(targets))


@dataclass(frozen=True)
class Journey:
    """A workflow ready to emit: its settings and its graph of nodes in document order."""

    workflow: m.Workflow
    file: str
    start: str
    nodes: Mapping[str, Node]
    exits: tuple[m.Signal, ...] = field(default=())
    #: First step after the goal is reached (the goal's `then`), if any.
    goal_start: str | None = None
    #: Keys of the nodes that run after the goal, outside the race.
    after_goal: frozenset[str] = frozenset()

    @property
    def roots(self) -> tuple[str, ...]:
        return (self.start,) if self.goal_start is None else (self.start, self.goal_start)

    @property
    def races(self) -> bool:
        """Whether goal or exit criteria must interrupt the journey (the Parallel race)."""
        return self.workflow.goal is not None or bool(self.exits)

    @property
    def defers_sends(self) -> bool:
        settings = self.workflow.settings
        return settings.quiet_hours is not None or settings.frequency_cap is not None

    @property
    def counts_loops(self) -> bool:
        return bool(self.loop_counters)

    @property
    def loop_counters(self) -> dict[str, str]:
        """Counted gotos and where each counts, in document order: `$.loops.<name>`.

        Numbered rather than derived from ids, so ids like `again-a` and `again_a` cannot
        share a counter."""
        counted = [n.key for n in self.nodes.values() if n.kind == "goto" and n.step.max_times]
        return {key: f"loop{index}" for index, key in enumerate(counted, start=1)}


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48] or "step"


def effective_exits(workflow: m.Workflow) -> tuple[m.Signal, ...]:
    exits: list[m.Signal] = list(workflow.exit)
    already = {signal.key() for signal in exits}
    if workflow.settings.stop_on_unsubscribe and "event:unsubscribed" not in already:
        exits.append(m.ExitCriterion(label="Unsubscribed", event="unsubscribed"))
    return tuple(exits)


class _Builder:
    def __init__(self, workflow: m.Workflow) -> None:
        self.workflow = workflow
        self.nodes: dict[str, Node] = {}
        self.keys: dict[int, str] = {}
        self.used: set[str] = set()
        self.reserved: set[str] = set()
        self.explicit_labels: set[str] = set()
        self.default_labels: dict[int, str] = {}

    def reserve_ids(self, steps: list[Any] | None) -> None:
        """Explicit ids first, so a label's slug can never take an id a goto names."""
        for step in steps or []:
            if step.id:
                self.reserved.add(step.id)
            if step.label and "label" in step.model_fields_set:
                self.explicit_labels.add(step.label)
            for child in _child_lists(step):
                self.reserve_ids(child)

    def assign_keys(self, steps: list[Any] | None) -> None:
        for step in steps or []:
            if step.type in TERMINAL_KINDS and "label" not in step.model_fields_set:
                # Unlabelled ends are "End", "End 2", ... in document order.
                label, counter = step.label, 2
                while label in self.explicit_labels:
                    label, counter = f"{step.label} {counter}", counter + 1
                self.explicit_labels.add(label)
                self.default_labels[id(step)] = label
            label = self.default_labels.get(id(step)) or step.label
            base = step.id or slug(label or f"goto-{step.step}")
            taken = self.used if step.id else self.used | self.reserved
            key, counter = base, 2
            while key in taken:
                key, counter = f"{base}-{counter}", counter + 1
            self.used.add(key)
            self.keys[id(step)] = key
            for child in _child_lists(step):
                self.assign_keys(child)

    def key_for_id(self, step_id: str) -> str | None:
        return step_id if step_id in self.reserved else None

    def build_list(self, steps: list[Any] | None, path: Path, continuation: str) -> str:
        """Build nodes for `steps`; return the key of the first (or the continuation)."""
        following = continuation
        for index in range(len(steps or []) - 1, -1, -1):
            step = (steps or [])[index]
            following = self.build_step(step, (*path, index), following)
        return following

    def build_step(self, step: Any, path: Path, following: str) -> str:
        key = self.keys[id(step)]
        kind = step.type
        label = self.default_labels.get(id(step)) or step.label or ""
        next_key: str | None = following
        branches: list[Branch] = []
        if kind in TERMINAL_KINDS:
            next_key = None
        elif kind == "goto":
            target = self.key_for_id(step.step) or f"<missing:{step.step}>"
            branches.append(Branch("jump", target, (*path, "step")))
            next_key = following if step.max_times else None
        elif kind in ("decision", "wait_for_event"):
            yes = self.build_list(step.yes, (*path, "yes"), following)
            no = self.build_list(step.no, (*path, "no"), following)
            condition = step.condition if kind == "decision" else None
            # A decision's condition sits on the step itself (path), not under yes:.
            branches += [Branch("Yes", yes, path, condition), Branch("No", no, (*path, "no"))]
            next_key = None
        elif kind == "split":
            for index, split_path in enumerate(step.paths):
                where = (*path, "paths", index)
                target = self.build_list(split_path.steps, (*where, "steps"), following)
                branches.append(Branch(split_path.label, target, where, split_path.condition))
            otherwise = self.build_list(step.otherwise, (*path, "otherwise"), following)
            branches.append(Branch(step.otherwise_label, otherwise, (*path, "otherwise")))
            next_key = None
        elif kind == "ab_split":
            for index, variant in enumerate(step.variants):
                where = (*path, "variants", index)
                target = self.build_list(variant.steps, (*where, "steps"), following)
                branches.append(Branch(variant.label, target, where, weight=variant.weight))
            if step.holdout is not None:
                target = self.build_holdout(key, step.holdout, (*path, "holdout"))
                branches.append(
                    Branch(
                        step.holdout.label, target, (*path, "holdout"), weight=step.holdout.weight
                    )
                )
            next_key = None
        self.nodes[key] = Node(key, kind, label, step, path, next_key, tuple(branches))
        return key

    def fresh_key(self, base: str) -> str:
        key, counter = base, 2
        while key in self.used or key in self.reserved:
            key, counter = f"{base}-{counter}", counter + 1
        self.used.add(key)
        return key

    def build_holdout(self, parent: str, holdout: m.Holdout, path: Path) -> str:
        end_key = self.fresh_key(f"{parent}-holdout")
        self.nodes[end_key] = Node(
            end_key, "end", holdout.label, m.End(type="end", label=holdout.label), path, None
        )
        if holdout.measure_for is None:
            return end_key
        wait_key = self.fresh_key(f"{parent}-holdout-wait")
        label = f"{holdout.label}: measure {holdout.measure_for.text}"
        wait = m.Wait.model_validate(
            {"type": "wait", "label": label, "for": holdout.measure_for.text}
        )
        self.nodes[wait_key] = Node(
            wait_key, "wait", label, wait, path, end_key, authored=holdout.label
        )
        return wait_key


def _child_lists(step: Any) -> list[list[Any] | None]:
    kind = getattr(step, "type", None)
    if kind in ("decision", "wait_for_event"):
        return [step.yes, step.no]
    if kind == "split":
        return [p.steps for p in step.paths] + [step.otherwise]
    if kind == "ab_split":
        return [v.steps for v in step.variants]
    return []


def build_journey(workflow: m.Workflow, file: str) -> Journey:
    builder = _Builder(workflow)
    follow_up = workflow.goal.then if workflow.goal is not None else None
    for steps in (workflow.steps, follow_up):
        builder.reserve_ids(steps)
    for steps in (workflow.steps, follow_up):
        builder.assign_keys(steps)
    start = builder.build_list(workflow.steps, ("steps",), FALL_OFF)
    journey_keys = set(builder.nodes)
    goal_start = None
    if follow_up:
        goal_start = builder.build_list(follow_up, ("goal", "then"), GOAL_DONE)
    ordered = dict(sorted(builder.nodes.items(), key=lambda item: _path_order(item[1].path)))
    return Journey(
        workflow,
        file,
        start,
        ordered,
        effective_exits(workflow),
        goal_start,
        frozenset(set(builder.nodes) - journey_keys),
    )


def _path_order(path: Path) -> tuple[tuple[int, str], ...]:
    # The journey's steps first, then the goal's follow-up steps.
    scope = ((0, "") if path[:1] == ("steps",) else (1, ""),)
    return scope + tuple((part, "") if isinstance(part, int) else (-1, part) for part in path)


# --- State names -------------------------------------------------------------------------

JOURNEY_COMPLETED = "Journey completed"
JOURNEY_GOAL_REACHED = "Goal reached"
JOURNEY_EXITED = "Left the journey"
START_STATE = "Start journey"
RESERVED_NAMES = frozenset({JOURNEY_COMPLETED, JOURNEY_GOAL_REACHED, JOURNEY_EXITED, START_STATE})


def check_name(label: str) -> str:
    return f"Check: {label}"


def schedule_name(label: str) -> str:
    return f"Schedule: {label}"


def defer_name(label: str) -> str:
    return f"Quiet hours or cap: {label}"


def hold_name(label: str) -> str:
    return f"Hold: {label}"


def draw_name(label: str) -> str:
    return f"Draw: {label}"


def count_name(label: str) -> str:
    return f"Count: {label}"


def repeat_wait_name(node: Node) -> str:
    return f"Wait {node.step.after.text}: {node.label}"


def repeat_more_name(label: str) -> str:
    return f"Runs left? {label}"


def repeat_done_name(label: str) -> str:
    return f"Done: {label}"


def watch_name(label: str) -> str:
    return f"Watch for: {label}"


SEND_KINDS = frozenset({*m.SEND_CHANNELS, "notify_team"})


def state_names(node: Node, journey: Journey) -> list[str]:
    """Every state name this node becomes, the first being the one others jump to."""
    kind, label = node.kind, node.label
    if kind in ("decision", "split"):
        return [check_name(label), label]
    if kind == "ab_split":
        return [draw_name(label), label]
    if kind == "wait_for_window" or (kind == "wait_until" and node.step.date is None):
        return [schedule_name(label), label]
    if kind in m.SEND_CHANNELS and journey.defers_sends:
        return [label, defer_name(label), hold_name(label)]
    if kind == "goto":
        return [label, count_name(label)] if node.step.max_times else []
    if kind == "repeat":
        names = []
        if node.step.times:
            names.append(repeat_more_name(label))
        if node.step.after:
            names.append(repeat_wait_name(node))
        return [*names, label, repeat_done_name(label)]
    return [label]


def entry_name(key: str, journey: Journey) -> str:
    """The state a jump to `key` lands on (a goto without a counter passes straight on)."""
    seen: set[str] = set()
    while True:
        if key == GOAL_DONE:
            return JOURNEY_GOAL_REACHED
        node = journey.nodes[key]
        if node.kind == "goto" and not node.step.max_times and key not in seen:
            seen.add(key)
            key = node.branches[0].target
            continue
        return state_names(node, journey)[0]
