"""Graph validation: everything that can be wrong with a workflow that parsed.

Each check appends diagnostics and never stops the others, so an author sees every problem
at once. Checks work on the intermediate graph (`ir.Journey`) and point back into the
source with the node's path.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from jinja2 import TemplateSyntaxError
from pydantic import ValidationError

from journeys.compiler import ir
from journeys.compiler import models as m
from journeys.compiler.diagnostics import Diagnostic, Severity, did_you_mean
from journeys.compiler.parse import explain
from journeys.compiler.source import Path, SourceDocument, load_yaml
from journeys.durations import ONE_YEAR, describe_seconds
from journeys.templates import TEMPLATE_ADAPTER, TEMPLATE_ROOTS, TEXT_FIELDS, variables_used

HISTORY_LIMIT = 25_000
#: Execution-history events each state type writes (entered + exited, plus a Task's
#: scheduled/started/succeeded); used to bound loops before they hit the 25,000 limit.
EVENTS_PER_STATE = {"Task": 5, "Choice": 2, "Pass": 2, "Wait": 2, "Succeed": 2, "Fail": 1}


@dataclass
class TemplateIndex:
    """Templates of one workflows directory, loaded once and shared by every workflow."""

    directory: FsPath
    parsed: dict[str, Any] = field(default_factory=dict)
    documents: dict[str, SourceDocument] = field(default_factory=dict)
    problems: dict[str, list[Diagnostic]] = field(default_factory=dict)

    def names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob("*.yaml"))

    def load(self, name: str) -> Any | None:
        if name in self.parsed or name in self.problems:
            return self.parsed.get(name)
        path = self.directory / f"{name}.yaml"
        if not path.is_file():
            return None
        document = load_yaml(path.read_text(encoding="utf-8"), str(path))
        self.documents[name] = document
        problems = [
            Diagnostic(Severity.ERROR, str(path), pos.line, pos.column, message, hint)
            for pos, message, hint in document.problems
        ]
        if not problems:
            try:
                self.parsed[name] = TEMPLATE_ADAPTER.validate_python(document.data)
            except ValidationError as error:
                problems = [explain_template(document, item) for item in error.errors()]
        for field_name in TEXT_FIELDS:
            template = self.parsed.get(name)
            source = getattr(template, field_name, None) if template else None
            if source is None:
                continue
            try:
                variables_used(source)
            except TemplateSyntaxError as error:
                position = document.position_of((field_name,))
                problems.append(
                    Diagnostic(
                        Severity.ERROR,
                        str(path),
                        # Block scalars (|) start on the line after their key.
                        position.line + (error.lineno or 1) - ("\n" not in source),
                        position.column,
                        f"template syntax error in {field_name}: {error.message}",
                        "check {{ }} and {% %} pairs",
                    )
                )
                self.parsed.pop(name, None)
        template = self.parsed.get(name)
        if template is not None and template.channel == "email" and not template.transactional:
            used = {(u.root, u.first) for u in variables_used(template.html)}
            if ("links", "unsubscribe") not in used:
                position = document.position_of(("html",))
                problems.append(
                    Diagnostic(
                        Severity.ERROR,
                        str(path),
                        position.line,
                        position.column,
                        "marketing email without an unsubscribe link: mailbox providers "
                        "require one from bulk senders",
                        'add <a href="{{ links.unsubscribe }}">Unsubscribe</a> to html, '
                        "or set transactional: true for a service message",
                        code="no-unsubscribe-link",
                    )
                )
        if problems:
            self.problems[name] = problems
        return self.parsed.get(name)


def explain_template(document: SourceDocument, item: Any) -> Diagnostic:
    diagnostic = explain(document, {**item, "loc": tuple(item["loc"][1:]) or ("channel",)})
    if item["type"] == "union_tag_invalid":
        expected = item["ctx"]["expected_tags"]
        return Diagnostic(
            diagnostic.severity,
            diagnostic.file,
            diagnostic.line,
            diagnostic.column,
            f'unknown channel "{item["ctx"]["tag"]}"',
            f"use one of: {expected}",
        )
    return diagnostic


@dataclass
class Checker:
    journey: ir.Journey
    document: SourceDocument
    templates: TemplateIndex
    known_workflows: frozenset[str] | None = None
    #: The segments defined beside the workflows, and where (None: not checked).
    known_segments: frozenset[str] | None = None
    segments_hint: str = ""
    diagnostics: list[Diagnostic] = field(default_factory=list)

    # --- helpers ---------------------------------------------------------------------
    def report(
        self,
        path: Path,
        message: str,
        hint: str = "",
        severity: Severity = Severity.ERROR,
        step: str = "",
        code: str = "",
    ) -> None:
        position = self.document.position_of(path)
        self.diagnostics.append(
            Diagnostic(
                severity,
                self.document.file,
                position.line,
                position.column,
                message,
                hint,
                step,
                code,
            )
        )

    def node_report(
        self,
        node: ir.Node,
        message: str,
        hint: str = "",
        attr: str | None = None,
        severity: Severity = Severity.ERROR,
        code: str = "",
    ) -> None:
        path = (*node.path, attr) if attr else node.path
        self.report(path, message, hint, severity, node.label or node.kind, code)

    @property
    def nodes(self) -> dict[str, ir.Node]:
        return dict(self.journey.nodes)

    def reachable(self) -> list[str]:
        seen: dict[str, None] = {}
        stack = list(reversed(self.journey.roots))
        while stack:
            key = stack.pop()
            if key in seen or key not in self.journey.nodes:
                continue
            seen[key] = None
            stack.extend(reversed(self.journey.nodes[key].successors))
        return list(seen)

    # --- checks ------------------------------------------------------------------------
    def run(self) -> list[Diagnostic]:
        self.check_file_name()
        self.check_ids()
        self.check_state_names()
        self.check_references()
        self.check_segments()
        reachable = self.reachable()
        self.check_unreachable(reachable)
        self.check_endings(reachable)
        self.check_loops(reachable)
        self.check_durations()
        self.check_execution_length(reachable)
        self.check_time_zones()
        self.check_event_dates()
        self.check_templates(reachable)
        self.check_frequency_cap(reachable)
        return self.diagnostics

    def check_file_name(self) -> None:
        stem = FsPath(self.document.file).stem
        if self.journey.workflow.id != stem:
            self.report(
                ("id",),
                f'id "{self.journey.workflow.id}" differs from the file name "{stem}"',
                f"rename the file to {self.journey.workflow.id}.yaml or set id: {stem}",
                code="id-file-name",
            )

    def check_ids(self) -> None:
        first: dict[str, Path] = {}
        for node in self.journey.nodes.values():
            step_id = getattr(node.step, "id", None)
            if step_id is None or node.path in first.values():
                continue
            if step_id in first:
                line = self.document.position_of((*first[step_id], "id")).line
                self.node_report(
                    node,
                    f'duplicate id "{step_id}" (first used on line {line})',
                    "give every step a different id",
                    attr="id",
                    code="duplicate-id",
                )
            else:
                first[step_id] = node.path

    def journey_names(self) -> list[tuple[str, Path, str, str]]:
        """Names of the states the compiler adds around the steps: (name, source path,
        the authored text inside it, what owns it)."""
        workflow = self.journey.workflow
        names: list[tuple[str, Path, str, str]] = [
            (name, (), name, "Journeys itself") for name in sorted(ir.RESERVED_NAMES)
        ]
        if not self.journey.races:
            return names
        names.append((workflow.name, ("name",), workflow.name, "the workflow"))
        signals: list[tuple[m.Signal, Path, str]] = []
        if workflow.goal is not None:
            signals.append((workflow.goal, ("goal", "label"), "the goal"))
        for index, signal in enumerate(self.journey.exits):
            if index < len(workflow.exit):
                where: Path = ("exit", index, "label")
                line = self.document.position_of(where).line
                signals.append((signal, where, f"the exit on line {line}"))
            else:
                where = ("settings", "stop_on_unsubscribe")
                signals.append((signal, where, "the exit that stop_on_unsubscribe adds"))
        # The implicit exit first, so a clash is reported where the author can fix it.
        signals.sort(key=lambda item: item[1] != ("settings", "stop_on_unsubscribe"))
        for signal, where, owner in signals:
            names.append((signal.label, where, signal.label, owner))
            names.append((ir.watch_name(signal.label), where, signal.label, owner))
        return names

    def check_state_names(self) -> None:
        """Every state name must fit in 80 characters and be unique in the machine."""
        owners: dict[str, str] = {}
        reported: set[Path] = set()
        names = self.journey_names()
        # A goal or exit makes two states; the longer one sets the limit on its label.
        for name, where, authored, owner in sorted(names, key=lambda n: -len(n[0])):
            if where not in reported and len(name) > ir.MAX_STATE_NAME:
                self.name_problem(name, where, authored, owner, {}, step="")
                reported.add(where)
        for name, where, authored, owner in names:
            if where in reported:
                continue  # one problem per goal or exit, not one per state it makes
            if self.name_problem(name, where, authored, owner, owners, step=""):
                reported.add(where)
                continue
            owners[name] = owner
        for node in self.journey.nodes.values():
            line = self.document.position_of(node.path).line
            for name in ir.state_names(node, self.journey):
                authored = node.authored or node.label
                where = (*node.path, "label")
                if self.name_problem(
                    name,
                    where,
                    authored,
                    f"the step on line {line}",
                    owners,
                    step=node.label or node.kind,
                    key=node.key,
                ):
                    break
                owners[name] = f"the step on line {line}"

    def name_problem(
        self,
        name: str,
        where: Path,
        authored: str,
        owner: str,
        owners: dict[str, str],
        step: str,
        key: str = "",
    ) -> bool:
        if len(name) > ir.MAX_STATE_NAME:
            limit = ir.MAX_STATE_NAME - (len(name) - len(authored))
            self.report(
                where,
                f'"{authored[:40]}…" is {len(authored)} characters; as the '
                f'state name "{name[:30]}…" it is {len(name)}, over the '
                f"{ir.MAX_STATE_NAME} Step Functions allows",
                f"shorten it to at most {limit} characters",
                step=step,
                code="label-too-long",
            )
            return True
        if name in owners and owners[name] != owner:
            first = owners[name]
            code = "reserved-label" if first == "Journeys itself" else "duplicate-label"
            self.report(
                where,
                f'"{name}" is already the name of {first}',
                "state names must be unique: choose another label",
                step=step,
                code=code,
            )
            return True
        return False

    def check_references(self) -> None:
        ids = {n.step.id: n for n in self.journey.nodes.values() if getattr(n.step, "id", None)}
        sends = {i for i, n in ids.items() if n.kind in m.SEND_CHANNELS}
        trigger_keys = [t.key() for t in self.journey.workflow.triggers()]
        short = [k.removeprefix("event:") for k in trigger_keys]
        for node in self.journey.nodes.values():
            if node.kind == "goto" and node.step.step not in ids:
                self.node_report(
                    node,
                    f'goto jumps to "{node.step.step}", but no step has that id.'
                    + did_you_mean(node.step.step, ids),
                    "give the target step an id: or fix the name",
                    attr="step",
                    code="dangling-jump",
                )
            if node.kind == "goto" and node.step.step in ids:
                after_goal = self.journey.after_goal
                if (node.key in after_goal) != (ids[node.step.step].key in after_goal):
                    self.node_report(
                        node,
                        "goto cannot jump between the journey and the goal's then steps",
                        "the goal's then steps run after "
                        "the journey has ended: keep jumps inside one of them",
                        attr="step",
                        code="jump-across-goal",
                    )
            if (
                node.kind == "start_workflow"
                and self.known_workflows is not None
                and node.step.workflow not in self.known_workflows
            ):
                self.node_report(
                    node,
                    f'there is no workflow "{node.step.workflow}".'
                    + did_you_mean(node.step.workflow, self.known_workflows),
                    "workflows are the .yaml files beside this one",
                    attr="workflow",
                    code="unknown-workflow",
                )
            for branch in node.branches:
                for condition, where in _conditions(branch.condition, branch.path):
                    started_by = getattr(condition, "started_by", None)
                    if started_by is not None and started_by not in trigger_keys + short:
                        self.report(
                            (*where, "started_by"),
                            f'"{started_by}" is not one of this '
                            "workflow's triggers." + did_you_mean(started_by, short),
                            "triggers here: " + ", ".join(short),
                            step=node.label,
                            code="unknown-trigger",
                        )
                    target = getattr(condition, "opened", None) or getattr(
                        condition, "clicked", None
                    )
                    if target is not None and target not in sends:
                        verb = "opened" if getattr(condition, "opened", None) else "clicked"
                        self.report(
                            (*where, verb),
                            f'"{verb}: {target}" must name the id of a '
                            "send step in this workflow." + did_you_mean(target, sends),
                            "add id: to the send step you mean",
                            step=node.label,
                            code="dangling-message",
                        )

    def segment_references(self) -> Iterator[tuple[str, Path, str]]:
        """Every segment the workflow names: (segment, where, step label)."""
        workflow = self.journey.workflow
        listed = isinstance(workflow.trigger, list)
        for index, trigger in enumerate(workflow.triggers()):
            for key in ("segment_entered", "segment_exited"):
                name = getattr(trigger, key, None)
                if name is not None:
                    yield name, (("trigger", index, key) if listed else ("trigger", key)), ""
        if workflow.goal is not None and workflow.goal.segment is not None:
            yield workflow.goal.segment, ("goal", "segment"), ""
        for index, criterion in enumerate(workflow.exit):
            if criterion.segment is not None:
                yield criterion.segment, ("exit", index, "segment"), ""
        for node in self.journey.nodes.values():
            for branch in node.branches:
                for condition, where in _conditions(branch.condition, branch.path):
                    if isinstance(condition, m.SegmentCondition):
                        yield condition.segment, (*where, "segment"), node.label

    def check_segments(self) -> None:
        if self.known_segments is None:
            return
        reported: set[Path] = set()
        for name, where, step in self.segment_references():
            if name in self.known_segments or where in reported:
                continue
            reported.add(where)
            self.report(
                where,
                f'there is no segment "{name}".' + did_you_mean(name, self.known_segments),
                self.segments_hint or "define it in segments/<id>.yaml beside the workflows",
                step=step,
                code="unknown-segment",
            )

    def check_unreachable(self, reachable: list[str]) -> None:
        reached = set(reachable)
        predecessors: dict[str, set[str]] = defaultdict(set)
        for node in self.journey.nodes.values():
            for successor in node.successors:
                predecessors[successor].add(node.key)
        for node in self.journey.nodes.values():
            if node.key in reached:
                continue
            # Report only where an unreachable region starts, not every step inside it.
            if any(p not in reached for p in predecessors[node.key] if p != node.key):
                continue
            self.node_report(
                node,
                "this step can never run: no path leads to it",
                "remove it, or reach it with a goto (it needs an id:)",
                code="unreachable",
            )

    def check_endings(self, reachable: list[str]) -> None:
        for key in reachable:
            node = self.journey.nodes[key]
            if ir.FALL_OFF in node.successors:
                self.node_report(
                    node,
                    "this path reaches the end of the steps without an end",
                    "add a step `- type: end` (or goto / repeat) after it",
                    code="no-end",
                )

    def check_loops(self, reachable: list[str]) -> None:
        reached = set(reachable)
        graph = {k: [s for s in self.journey.nodes[k].successors if s in reached] for k in reached}
        for component in strongly_connected(graph):
            keys = set(component)
            if len(component) == 1 and component[0] not in graph[component[0]]:
                continue
            nodes = [self.journey.nodes[k] for k in component]
            gotos = [
                n for n in nodes if n.kind == "goto" and any(b.target in keys for b in n.branches)
            ]
            anchor = gotos[0] if gotos else nodes[0]
            waits = [n for n in nodes if n.kind in ir.WAIT_KINDS]
            if not waits:
                self.node_report(
                    anchor,
                    "this loop has no wait: it would spin as fast as Step "
                    "Functions allows and hit the history limit in seconds",
                    "put a wait, wait_until or wait_for_event inside the loop",
                    code="loop-without-wait",
                )
                continue
            unbounded = [g for g in gotos if not g.step.max_times]
            for goto in unbounded:
                self.node_report(
                    goto,
                    "this goto makes a loop with no max_times: one execution "
                    "cannot run forever (25,000 history events, 1 year)",
                    "add max_times: N, or use `- type: repeat`, which continues as a new execution",
                    code="unbounded-loop",
                )
            if unbounded:
                continue
            times = 1
            for goto in gotos:
                times *= goto.step.max_times + 1
            per_round = sum(self.history_events(n) for n in nodes)
            total = per_round * times + sum(
                self.history_events(self.journey.nodes[k]) for k in reached - keys
            )
            if total > HISTORY_LIMIT:
                self.node_report(
                    anchor,
                    f"this loop can write about {total:,} execution-history "
                    f"events ({per_round} per round, {times} rounds); Step Functions "
                    f"stops an execution at {HISTORY_LIMIT:,}",
                    "lower max_times, or use `- type: repeat`, which continues as a "
                    "new execution with a fresh history",
                    attr="max_times",
                    code="history-limit",
                )
            longest = sum(self.wait_seconds(n) for n in nodes) * times
            if longest > ONE_YEAR:
                self.node_report(
                    anchor,
                    f"this loop can wait {describe_seconds(longest)} in all; "
                    "an execution lasts at most 1 year",
                    "lower max_times or use `- type: repeat`",
                    attr="max_times",
                    code="loop-too-long",
                )

    def history_events(self, node: ir.Node) -> int:
        names = ir.state_names(node, self.journey)
        if node.kind in ("wait", "wait_until", "wait_for_window"):
            return EVENTS_PER_STATE["Wait"] + (EVENTS_PER_STATE["Task"] if len(names) > 1 else 0)
        if node.kind in ("decision", "split", "ab_split"):
            return EVENTS_PER_STATE["Task"] + EVENTS_PER_STATE["Choice"]
        if node.kind == "goto":
            return EVENTS_PER_STATE["Choice"] + EVENTS_PER_STATE["Pass"] if names else 0
        return EVENTS_PER_STATE["Task"] * max(1, len(names) - 2 if len(names) > 2 else len(names))

    @staticmethod
    def wait_seconds(node: ir.Node) -> int:
        if node.kind == "wait":
            return int(node.step.duration.seconds)
        if node.kind == "wait_for_event":
            return int(node.step.timeout.seconds)
        if node.kind == "repeat" and node.step.after is not None:
            return int(node.step.after.seconds)
        return 0

    def check_durations(self) -> None:
        for node in self.journey.nodes.values():
            for attr, duration in _durations(node):
                if attr != "offset" and duration.seconds <= 0:
                    self.node_report(
                        node,
                        f'{attr} must be longer than zero (got "{duration.text}")',
                        attr=attr,
                        code="bad-duration",
                    )
                elif abs(duration.seconds) > ONE_YEAR:
                    self.node_report(
                        node,
                        f'{attr} "{duration.text}" is longer than one year, the '
                        "longest a Step Functions execution (and Wait) can last",
                        "use at most 365 days; for yearly journeys use a date "
                        "trigger with recurs: yearly, or repeat",
                        attr=attr,
                        code="wait-too-long",
                    )

    def check_time_zones(self) -> None:
        workflow = self.journey.workflow
        if workflow.settings.time_zone is not None:
            return
        hint = (
            "add settings: time_zone: Europe/London, the fallback for contacts without a time zone"
        )
        step_hint = hint + ", or time_zone: on the step"
        if workflow.settings.quiet_hours is not None:
            self.report(
                ("settings", "quiet_hours"),
                "quiet hours need a time zone for contacts who have none",
                hint,
                code="no-time-zone",
            )
        for index, trigger in enumerate(workflow.triggers()):
            if isinstance(trigger, m.DateTrigger):
                where = (
                    ("trigger", index, "date")
                    if isinstance(workflow.trigger, list)
                    else ("trigger", "date")
                )
                self.report(
                    where,
                    f"the date trigger fires at {trigger.at}, which needs a "
                    "time zone for contacts who have none",
                    hint,
                    code="no-time-zone",
                )
        for node in self.journey.nodes.values():
            timed = node.kind == "wait_for_window" or (node.kind == "wait_until" and node.step.at)
            if timed and node.step.time_zone is None:
                self.node_report(
                    node,
                    (
                        "this time window"
                        if node.kind == "wait_for_window"
                        else f"this time of day ({node.step.at})"
                    )
                    + " has no time zone for contacts who have none",
                    step_hint,
                    code="no-time-zone",
                )

    def check_event_dates(self) -> None:
        if any(isinstance(t, m.EventTrigger) for t in self.journey.workflow.triggers()):
            return
        for node in self.journey.nodes.values():
            if node.kind == "wait_until" and node.step.event_property is not None:
                self.node_report(
                    node,
                    "event_property reads the event that started the journey, but this "
                    "workflow is not started by an event",
                    "use attribute: to wait on a date kept on the contact",
                    attr="event_property",
                    code="no-trigger-event",
                )

    def check_execution_length(self, reachable: list[str]) -> None:
        """Waits one after another must fit in the year an execution may last."""
        reached = set(reachable)
        order = self.forward_order(reachable)
        position = {key: index for index, key in enumerate(order)}
        waited = {key: 0 for key in reachable}
        for key in order:
            node = self.journey.nodes[key]
            total = waited[key] + self.wait_seconds(node)
            if self.wait_seconds(node) > ONE_YEAR:
                return  # check_durations already says this wait alone is too long
            if total > ONE_YEAR:
                self.node_report(
                    node,
                    f"a contact can reach the end of this step after {describe_seconds(total)} "
                    "of waiting; a Step Functions execution lasts at most one year",
                    "shorten the waits, or hand over to another workflow with start_workflow "
                    "(or repeat) before a year has passed",
                    code="journey-too-long",
                )
                return
            for successor in node.successors:
                if successor in reached and position[successor] > position[key]:
                    waited[successor] = max(waited[successor], total)

    def forward_order(self, reachable: list[str]) -> list[str]:
        """Reachable nodes in an order where every forward edge points later (loops are
        bounded separately by check_loops)."""
        seen: set[str] = set()
        finished: list[str] = []
        for root in self.journey.roots:
            stack: list[tuple[str, int]] = [(root, 0)]
            while stack:
                key, child = stack.pop()
                if child == 0:
                    if key in seen or key not in self.journey.nodes:
                        continue
                    seen.add(key)
                successors = self.journey.nodes[key].successors
                if child < len(successors):
                    stack.append((key, child + 1))
                    if successors[child] not in seen:
                        stack.append((successors[child], 0))
                else:
                    finished.append(key)
        return [k for k in reversed(finished) if k in set(reachable)]

    def fetched_before(self, reachable: list[str]) -> dict[str, frozenset[str]]:
        """For each node, the `data.<name>` every path to it has fetched (must-analysis)."""
        everything = frozenset(
            n.step.save_as for n in self.journey.nodes.values() if n.kind == "fetch"
        )
        incoming: dict[str, frozenset[str]] = {k: everything for k in reachable}
        for root in self.journey.roots:
            incoming[root] = frozenset()
        changed = True
        while changed:
            changed = False
            for key in reachable:
                node = self.journey.nodes[key]
                out = incoming[key] | ({node.step.save_as} if node.kind == "fetch" else set())
                for successor in node.successors:
                    if successor in incoming and successor not in self.journey.roots:
                        merged = incoming[successor] & out
                        if merged != incoming[successor]:
                            incoming[successor] = merged
                            changed = True
        return incoming

    def check_templates(self, reachable: list[str]) -> None:
        available = self.fetched_before(reachable)
        names = self.templates.names()
        has_event = any(isinstance(t, m.EventTrigger) for t in self.journey.workflow.triggers())
        for key in reachable:
            node = self.journey.nodes[key]
            if node.kind not in ir.SEND_KINDS:
                continue
            name = node.step.template
            template = self.templates.load(name)
            if template is None and name not in self.templates.problems:
                self.node_report(
                    node,
                    f'template "{name}" does not exist in '
                    f"{self.templates.directory}." + did_you_mean(name, names),
                    f"create {self.templates.directory / (name + '.yaml')}",
                    attr="template",
                    code="missing-template",
                )
                continue
            if template is None:
                continue
            wanted = "team" if node.kind == "notify_team" else m.SEND_CHANNELS[node.kind]
            if template.channel != wanted and {template.channel, wanted} != {"sms", "whatsapp"}:
                self.node_report(
                    node,
                    f'template "{name}" is {_article(template.channel)} '
                    f"{template.channel} template, but "
                    f"this step sends {wanted}",
                    f"use a template with channel: {wanted}",
                    attr="template",
                    code="template-channel",
                )
                continue
            self.check_template_variables(
                node, template, available.get(key, frozenset()), has_event
            )

    def check_template_variables(
        self, node: ir.Node, template: Any, data: frozenset[str], has_event: bool
    ) -> None:
        name = node.step.template
        document = self.templates.documents[name]
        for field_name in TEXT_FIELDS:
            source = getattr(template, field_name, None)
            if source is None:
                continue
            for use in variables_used(source):
                where = document.position_of((field_name,))
                # Block scalars (|) start on the line after the key.
                offset = use.line if "\n" in source else 0
                at = f"{document.file}:{where.line + offset}"
                shown = f"{use.root}.{use.first}" if use.first else use.root
                if use.root not in TEMPLATE_ROOTS:
                    self.node_report(
                        node,
                        f'template "{name}" uses "{shown}" ({at}), which no '
                        "message can know." + did_you_mean(use.root, TEMPLATE_ROOTS),
                        "templates may use " + ", ".join(TEMPLATE_ROOTS),
                        attr="template",
                        code="unknown-variable",
                    )
                elif use.root == "event" and not has_event:
                    self.node_report(
                        node,
                        f'template "{name}" uses "{shown}" ({at}), but this '
                        "workflow is not started by an event",
                        "use contact attributes instead",
                        attr="template",
                        code="unknown-variable",
                    )
                elif use.root == "data" and use.first and use.first not in data:
                    self.node_report(
                        node,
                        f'template "{name}" uses "{shown}" ({at}), but no '
                        f"fetch step with save_as: {use.first} runs before this step "
                        "on every path",
                        "add a fetch step before it, or move the send after the fetch",
                        attr="template",
                        code="unknown-variable",
                    )

    def check_frequency_cap(self, reachable: list[str]) -> None:
        cap = self.journey.workflow.settings.frequency_cap
        if cap is None:
            return
        worst, at = 0, None
        for key in reachable:
            node = self.journey.nodes[key]
            if node.kind in m.SEND_CHANNELS:
                count = self.sends_within(key, cap.per.seconds)
                if count > worst:
                    worst, at = count, node
        if at is not None and worst > cap.max:
            self.report(
                ("settings", "frequency_cap"),
                f"a contact can get up to {worst} messages within {cap.per.text} from "
                f'this workflow alone (starting at "{at.label}"), above the frequency cap '
                f"of {cap.max}: the cap will hold messages back",
                "add waits between sends, or raise the cap",
                Severity.WARNING,
                code="frequency-cap",
            )

    def sends_within(self, start: str, window: int) -> int:
        """Most sends on any path from `start` before `window` seconds of waiting pass."""
        best = 0
        budget = 20_000
        stack: list[tuple[str, int, int, int]] = [(start, 0, 0, 0)]
        while stack and budget:
            budget -= 1
            key, elapsed, sends, depth = stack.pop()
            node = self.journey.nodes.get(key)
            if node is None or elapsed >= window or depth > 200:
                best = max(best, sends)
                continue
            sends += node.kind in m.SEND_CHANNELS
            best = max(best, sends)
            if node.kind == "wait_for_event":
                # The event may come at once (yes), or the whole timeout passes (no).
                yes, no = node.branches
                stack.append((yes.target, elapsed, sends, depth + 1))
                stack.append((no.target, elapsed + self.wait_seconds(node), sends, depth + 1))
                continue
            elapsed += self.wait_seconds(node) if node.kind == "wait" else 0
            for successor in node.successors:
                stack.append((successor, elapsed, sends, depth + 1))
        return best


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _durations(node: ir.Node) -> Iterator[tuple[str, Any]]:
    step = node.step
    for attr in ("duration", "timeout", "after", "offset"):
        value = getattr(step, attr, None)
        if value is not None and hasattr(value, "seconds"):
            yield ("for" if attr == "duration" else attr), value


def _conditions(condition: Any, path: Path) -> Iterable[tuple[Any, Path]]:
    if condition is None:
        return
    base = (*path, "condition")
    stack: list[tuple[Any, Path]] = [(condition, base)]
    while stack:
        item, where = stack.pop()
        yield item, where
        for attr, key in (("all", "all"), ("any", "any")):
            for index, child in enumerate(getattr(item, attr, None) or []):
                stack.append((child, (*where, key, index)))
        if isinstance(item, m.NotCondition):
            stack.append((item.not_, (*where, "not")))


def strongly_connected(graph: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (workflows can be thousands of steps deep)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, child_index = work.pop()
            if child_index == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            children = graph.get(node, [])
            if child_index < len(children):
                work.append((node, child_index + 1))
                child = children[child_index]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return components


def validate_journey(
    journey: ir.Journey,
    document: SourceDocument,
    templates: TemplateIndex,
    known_workflows: frozenset[str] | None = None,
    known_segments: frozenset[str] | None = None,
    segments_hint: str = "",
) -> list[Diagnostic]:
    """Every problem of a parsed workflow. `known_workflows` and `known_segments`, when
    given, are what `start_workflow` steps and segment references may name."""
    return Checker(
        journey, document, templates, known_workflows, known_segments, segments_hint
    ).run()
