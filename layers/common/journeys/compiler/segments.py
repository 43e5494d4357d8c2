"""Segments as code: `workflows/segments/<id>.yaml`, checked like workflows, shipped in the index.

A segment file names a group of contacts and the rule that puts a contact in it::

    id: repeat-browser
    description: Viewed a product page more than 3 times in the last 30 days.
    rule: {event: product_viewed, within: 30 days, at_least: 4}

The rule language is `models.SegmentRule`. Files are read with the workflows' YAML
loader and their pydantic errors are explained by `parse.explain`, so a mistake is
reported as ``file:line:col: error ...`` exactly like one in a workflow. On top of the
language, the segments of one directory are checked together: a rule may only name
segments that are defined, and no segment may contain itself through others (its
membership could never be decided).

`journeys compile` writes every segment into ``state_machines/index.json`` (see
`index_entry`); the router and the hourly sweep rebuild a `SegmentSet` from there
(`segment_set_from_index`), evaluate it (`journeys.segments`) and announce memberships
that changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from pydantic import TypeAdapter, ValidationError

from journeys.compiler import models as m
from journeys.compiler.diagnostics import Diagnostic, Severity, did_you_mean, sort_key
from journeys.compiler.parse import explain_all
from journeys.compiler.source import Path, SourceDocument, load_yaml
from journeys.compiler.validate import strongly_connected

__all__ = [
    "EVENTS_KEPT_SECONDS",
    "SEGMENTS_DIR",
    "SegmentLibrary",
    "SegmentSet",
    "event_names",
    "index_entry",
    "lookback_seconds",
    "parse_segment",
    "references",
    "segment_set_from_index",
    "walk_rule",
]

#: Segment files live here, beside the workflows (workflows/segments/).
SEGMENTS_DIR = "segments"
#: How long the router keeps events (`router.EVENT_TTL_SECONDS`): an `event` rule without
#: `within` counts every event still stored, so it looks back this far.
EVENTS_KEPT_SECONDS = 366 * 86400

_RULE: TypeAdapter[Any] = TypeAdapter(m.SegmentRule)


# --- Reading rules -------------------------------------------------------------------------


def walk_rule(rule: Any, path: Path = ("rule",)) -> Iterator[tuple[Any, Path]]:
    """The rule and every rule nested in it (`all`, `any`, `not`), with their paths in the
    segment file, depth first."""
    yield rule, path
    if isinstance(rule, m.SegmentAll):
        for index, inner in enumerate(rule.all):
            yield from walk_rule(inner, (*path, "all", index))
    elif isinstance(rule, m.SegmentAny):
        for index, inner in enumerate(rule.any):
            yield from walk_rule(inner, (*path, "any", index))
    elif isinstance(rule, m.SegmentNot):
        yield from walk_rule(rule.not_, (*path, "not"))


def references(rule: Any) -> list[tuple[str, Path]]:
    """The segments a rule names (`{segment: x}`), each with the path of its name."""
    return [
        (inner.segment, (*where, "segment"))
        for inner, where in walk_rule(rule)
        if isinstance(inner, m.SegmentCondition)
    ]


def event_names(rule: Any) -> set[str]:
    """The events a rule counts (what evaluating it must load)."""
    names: set[str] = set()
    for inner, _ in walk_rule(rule):
        if isinstance(inner, m.EventCondition):
            names.add(inner.event)
        elif isinstance(inner, m.ActivityDroppedRule):
            names.add(inner.activity_dropped.event)
    return names


def lookback_seconds(rule: Any) -> int:
    """How far back the rule's events go: `within`, two periods of an activity drop, and
    every stored event for an `event` rule without `within`."""
    longest = 0
    for inner, _ in walk_rule(rule):
        if isinstance(inner, m.EventCondition):
            seconds = inner.within.seconds if inner.within is not None else EVENTS_KEPT_SECONDS
            longest = max(longest, seconds)
        elif isinstance(inner, m.ActivityDroppedRule):
            longest = max(longest, 2 * inner.activity_dropped.period.seconds)
    return longest


def parse_segment(document: SourceDocument) -> tuple[m.Segment | None, list[Diagnostic]]:
    """A segment file's definition, or the problems that keep it from being one."""
    diagnostics = [
        Diagnostic(Severity.ERROR, document.file, pos.line, pos.column, message, hint)
        for pos, message, hint in document.problems
    ]
    if diagnostics:
        return None, diagnostics
    if not isinstance(document.data, dict):
        what = "empty" if document.data is None else "not a mapping"
        return None, [
            Diagnostic(
                Severity.ERROR,
                document.file,
                1,
                1,
                f"the segment file is {what}: it needs id, description and rule",
                "e.g. id: repeat-browser, then rule: {event: product_viewed, within: "
                "30 days, at_least: 4}; see docs/workflow-language.md, Segments",
            )
        ]
    try:
        return m.Segment.model_validate(document.data), []
    except ValidationError as error:
        return None, explain_all(document, error, root=m.Segment)


# --- One directory of segments -------------------------------------------------------------


@dataclass
class SegmentLibrary:
    """The segments of one workflows directory, loaded and checked once, shared by every
    workflow of the directory (which may only name these segments)."""

    directory: FsPath
    segments: dict[str, m.Segment] = field(default_factory=dict)
    documents: dict[str, SourceDocument] = field(default_factory=dict)
    problems: dict[str, list[Diagnostic]] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: FsPath) -> SegmentLibrary | None:
        """The segments in `directory`, or None when there is no such directory (then
        workflows may name any segment: nothing says which exist)."""
        if not directory.is_dir():
            return None
        library = cls(directory)
        for path in sorted(directory.glob("*.y*ml")):
            if path.suffix not in (".yaml", ".yml"):
                continue
            document = load_yaml(path.read_text(encoding="utf-8"), str(path))
            library.documents[path.stem] = document
            segment, problems = parse_segment(document)
            if segment is not None and segment.id != path.stem:
                position = document.position_of(("id",))
                problems.append(
                    Diagnostic(
                        Severity.ERROR,
                        str(path),
                        position.line,
                        position.column,
                        f'id "{segment.id}" differs from the file name "{path.stem}"',
                        f"rename the file to {segment.id}{path.suffix} or set id: {path.stem}",
                        code="id-file-name",
                    )
                )
                segment = None
            if segment is not None:
                library.segments[segment.id] = segment
            if problems:
                library.problems[str(path)] = problems
        library._check_references()
        library._check_cycles()
        library.problems = {
            file: sorted(problems, key=sort_key)
            for file, problems in sorted(library.problems.items())
        }
        return library

    @property
    def names(self) -> frozenset[str]:
        """Every segment a file defines, even one with mistakes (naming it is not one)."""
        return frozenset(self.documents)

    def hint(self) -> str:
        """Where segments come from, for "no such segment" errors."""
        defined = ", ".join(sorted(self.names)) or "none yet"
        return f"segments are the files in {self.directory}/ (defined: {defined})"

    def _report(self, segment_id: str, path: Path, message: str, hint: str, code: str) -> None:
        document = self.documents[segment_id]
        position = document.position_of(path)
        self.problems.setdefault(document.file, []).append(
            Diagnostic(
                Severity.ERROR,
                document.file,
                position.line,
                position.column,
                message,
                hint,
                code=code,
            )
        )

    def _check_references(self) -> None:
        for segment in self.segments.values():
            for name, where in references(segment.rule):
                if name not in self.names:
                    self._report(
                        segment.id,
                        where,
                        f'there is no segment "{name}".' + did_you_mean(name, self.names),
                        self.hint(),
                        "unknown-segment",
                    )

    def _check_cycles(self) -> None:
        graph = {
            segment.id: [name for name, _ in references(segment.rule) if name in self.segments]
            for segment in self.segments.values()
        }
        for component in strongly_connected(graph):
            members = set(component)
            if len(component) == 1 and component[0] not in graph[component[0]]:
                continue
            for segment_id in sorted(members):
                loop = _loop_from(segment_id, graph, members)
                where = next(
                    path
                    for name, path in references(self.segments[segment_id].rule)
                    if name == loop[1]
                )
                self._report(
                    segment_id,
                    where,
                    f'segment "{segment_id}" contains itself: ' + " -> ".join(loop),
                    "a segment cannot depend on itself, directly or through other segments: "
                    "its membership could never be decided; write the rule out instead",
                    "segment-cycle",
                )
                self.segments.pop(segment_id, None)


def _loop_from(start: str, graph: Mapping[str, list[str]], members: set[str]) -> list[str]:
    """The shortest path start -> ... -> start inside one strongly connected component."""
    previous: dict[str, str] = {}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in graph[node]:
            if child not in members:
                continue
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [start, *reversed(path[:-1]), start]
            if child not in previous:
                previous[child] = node
                queue.append(child)
    return [start, start]  # pragma: no cover - a component always loops back


# --- What the runtime needs ----------------------------------------------------------------


def index_entry(segment: m.Segment) -> dict[str, Any]:
    """A segment as `journeys compile` writes it into index.json (read back by
    `segment_set_from_index`)."""
    entry: dict[str, Any] = {
        "rule": _RULE.dump_python(segment.rule, mode="json", by_alias=True, exclude_none=True)
    }
    if segment.description:
        entry["description"] = segment.description
    return entry


@dataclass(frozen=True)
class SegmentSet:
    """Every segment of a deployment, in an order where a segment comes after the segments
    its rule names, with what evaluating them all needs to load."""

    ordered: tuple[m.Segment, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.ordered)

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(segment.id for segment in self.ordered)

    @property
    def event_names(self) -> frozenset[str]:
        return frozenset(name for s in self.ordered for name in event_names(s.rule))

    @property
    def lookback_seconds(self) -> int:
        return max((lookback_seconds(s.rule) for s in self.ordered), default=0)

    @classmethod
    def of(cls, segments: Iterable[m.Segment]) -> SegmentSet:
        """Ordered so that every segment follows those it names; ValueError on a cycle.
        A name that is not in `segments` is left to the contact's stored membership."""
        by_id = {segment.id: segment for segment in segments}
        ordered: list[m.Segment] = []
        state: dict[str, str] = {}  # "visiting" | "done"
        for root in sorted(by_id):
            stack: list[tuple[str, Iterator[str]]] = []
            if state.get(root) == "done":
                continue
            state[root] = "visiting"
            stack.append((root, iter([name for name, _ in references(by_id[root].rule)])))
            while stack:
                node, children = stack[-1]
                child = next(children, None)
                if child is None:
                    stack.pop()
                    state[node] = "done"
                    ordered.append(by_id[node])
                elif child in by_id:
                    if state.get(child) == "visiting":
                        raise ValueError(f'segment "{child}" contains itself through "{node}"')
                    if state.get(child) is None:
                        state[child] = "visiting"
                        names = [name for name, _ in references(by_id[child].rule)]
                        stack.append((child, iter(names)))
        return cls(tuple(ordered))


def segment_set_from_index(raw: Any) -> SegmentSet:
    """The segments of index.json (`{"segments": {id: {"rule": ...}}}`); ValueError saying
    which segment is wrong."""
    if raw is None:
        return SegmentSet()
    if not isinstance(raw, Mapping):
        raise ValueError('"segments" must be an object of segment id -> definition')
    segments = []
    for segment_id, entry in raw.items():
        try:
            segments.append(m.Segment.model_validate({**entry, "id": segment_id}))
        except (ValidationError, TypeError) as error:
            raise ValueError(f"segment {segment_id!r} in the index: {error}") from None
    return SegmentSet.of(segments)
