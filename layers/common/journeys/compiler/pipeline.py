"""Run the compiler stages over files and directories; what the CLI and tests call.

A directory of workflows may hold `templates/` (message content) and `segments/` (segment
definitions, `compiler.segments`); neither is a workflow. Problems in a template or
segment file come back as results of their own, after the workflows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from journeys.compiler import ir
from journeys.compiler.check import check_machine
from journeys.compiler.diagnostics import Diagnostic, Severity, sort_key
from journeys.compiler.emit import emit_journey
from journeys.compiler.models import Workflow
from journeys.compiler.parse import parse_workflow
from journeys.compiler.segments import SEGMENTS_DIR, SegmentLibrary, index_entry
from journeys.compiler.source import load_yaml
from journeys.compiler.validate import TemplateIndex, validate_journey

TEMPLATES_DIR = "templates"


@dataclass
class CompileResult:
    file: str
    workflow: Workflow | None = None
    journey: ir.Journey | None = None
    machine: dict[str, Any] | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    #: The segments beside the workflow (None: no segments/ directory there).
    segments: SegmentLibrary | None = None

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)


def workflow_files(paths: Iterable[str | Path]) -> list[Path]:
    """The workflow files named, or found directly inside the directories named."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.glob("*.y*ml") if p.suffix in (".yaml", ".yml")))
        else:
            files.append(path)
    return files


def compile_text(
    text: str,
    file: str,
    templates: TemplateIndex,
    known_workflows: frozenset[str] | None = None,
    segments: SegmentLibrary | None = None,
) -> CompileResult:
    """Compile one workflow. Segment references are checked only when `segments` is
    given: without a segments/ directory nothing says which segments exist."""
    result = CompileResult(file=file, segments=segments)
    document = load_yaml(text, file)
    workflow, result.diagnostics = parse_workflow(document)
    if workflow is None:
        return result
    result.workflow = workflow
    journey = ir.build_journey(workflow, file)
    result.journey = journey
    result.diagnostics += validate_journey(
        journey,
        document,
        templates,
        known_workflows,
        segments.names if segments is not None else None,
        segments.hint() if segments is not None else "",
    )
    if result.ok:
        machine = emit_journey(journey)
        problems = check_machine(machine)
        result.diagnostics += [
            Diagnostic(
                Severity.ERROR,
                file,
                1,
                1,
                f"internal compiler error: {problem}",
                "please report this with the workflow file",
            )
            for problem in problems
        ]
        if not problems:
            result.machine = machine
    return result


def compile_paths(
    paths: Iterable[str | Path], progress: Callable[[int, int, Path], None] | None = None
) -> list[CompileResult]:
    files = workflow_files(paths)
    results: list[CompileResult] = []
    indexes: dict[Path, TemplateIndex] = {}
    libraries: dict[Path, SegmentLibrary | None] = {}
    for position, path in enumerate(files, start=1):
        if progress:
            progress(position, len(files), path)
        directory = path.parent
        if directory.name == SEGMENTS_DIR and path.is_file():
            # A segment file named on its own (or its directory): check it as a segment,
            # with the segments beside it.
            if directory not in libraries:
                libraries[directory] = SegmentLibrary.load(directory)
            library = libraries[directory]
            found = library.problems.get(str(path), []) if library is not None else []
            results.append(CompileResult(str(path), diagnostics=list(found)))
            continue
        index = indexes.setdefault(directory, TemplateIndex(directory / TEMPLATES_DIR))
        if directory not in libraries:
            libraries[directory] = SegmentLibrary.load(directory / SEGMENTS_DIR)
        known = frozenset(p.stem for p in workflow_files([directory]))
        if not path.is_file():
            results.append(
                CompileResult(
                    str(path),
                    diagnostics=[
                        Diagnostic(
                            Severity.ERROR,
                            str(path),
                            1,
                            1,
                            "no such file",
                            "give a workflow .yaml file or a directory of them",
                        )
                    ],
                )
            )
            continue
        text = path.read_text(encoding="utf-8")
        results.append(compile_text(text, str(path), index, known, libraries[directory]))
    # Template problems belong to the template file: report each once, after the workflows.
    for index in indexes.values():
        for name, problems in index.problems.items():
            results.append(
                CompileResult(str(index.directory / f"{name}.yaml"), diagnostics=problems)
            )
    for directory, library in libraries.items():
        if library is None or directory.name == SEGMENTS_DIR:
            continue  # segment files named directly were reported in place
        for file, problems in library.problems.items():
            results.append(CompileResult(file, diagnostics=problems))
    for result in results:
        result.diagnostics.sort(key=sort_key)
    return results


def render_machine(machine: dict[str, Any]) -> str:
    """The committed form of a state machine: stable key order, 2-space indent, newline."""
    return json.dumps(machine, indent=2, ensure_ascii=False) + "\n"


INDEX_FILE = "index.json"


def workflow_index(results: Iterable[CompileResult]) -> dict[str, Any]:
    """What the router and the sweep need at run time: about every workflow, how contacts
    enter, the re-entry rule and the signals that end journeys; and every segment's rule.
    Generated beside the machines."""
    index: dict[str, Any] = {}
    segments: dict[str, Any] = {}
    for result in results:
        if result.segments is not None:
            for segment_id, segment in sorted(result.segments.segments.items()):
                segments.setdefault(segment_id, index_entry(segment))
        workflow = result.workflow
        if workflow is None or result.machine is None or result.journey is None:
            continue
        index[workflow.id] = {
            "name": workflow.name,
            "triggers": [
                {"key": trigger.key(), **trigger.model_dump(mode="json", exclude_none=True)}
                for trigger in workflow.triggers()
            ],
            "settings": workflow.settings.model_dump(mode="json", exclude_none=True),
            "goal": workflow.goal.key() if workflow.goal else None,
            "exits": [signal.key() for signal in result.journey.exits],
        }
    return {"segments": segments, "workflows": index}


def render_index(results: Iterable[CompileResult]) -> str:
    return json.dumps(workflow_index(results), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
