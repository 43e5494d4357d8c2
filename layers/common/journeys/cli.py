"""The `journeys` command: validate, compile and draw workflows.

Exit codes: 0 all good (warnings allowed), 1 problems found (or --check found stale
files), 2 the command itself was used wrongly.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from journeys import __version__, stats_cli
from journeys.compiler.diagnostics import Diagnostic
from journeys.compiler.pipeline import (
    INDEX_FILE,
    CompileResult,
    compile_paths,
    render_index,
    render_machine,
)
from journeys.compiler.stack import render_stack
from journeys.compiler.view import VIEW_SUFFIX, render_view
from journeys.local import cli as local_cli

MACHINE_SUFFIX = ".asl.json"
STACK_FILE = "template.json"

MAIN_HELP = """\
Journeys turns marketing workflows written in YAML into AWS Step Functions state machines.

  journeys validate workflows/           check every workflow, report every problem
  journeys compile workflows/ --out state_machines/
                                         write one <id>.asl.json per workflow
  journeys graph workflows/cart-abandonment.yaml --format html --out cart.html
                                         draw a workflow (Mermaid, SVG or HTML)
  journeys schema --out schema/workflow.schema.json
                                         JSON Schema for editor completion

The local stack (no AWS account needed; `make run` starts it):
  journeys up                            run the whole product on 127.0.0.1
  journeys contact ana --email ana@example.com --list Newsletter
  journeys event ana added_to_cart --prop cart_items=2
  journeys import contacts.csv --workflow lead-nurture
  journeys executions                    journeys and the step each contact is at
  journeys outbox --follow               email, SMS, push and webhooks as they go out
  journeys stats [WORKFLOW | --contact ID]
                                         the dashboard's numbers in the terminal
                                         (--api/--api-key for a deployment on AWS)

The workflow language is described in docs/workflow-language.md.
"""


def _print_diagnostics(results: list[CompileResult]) -> tuple[int, int]:
    errors = warnings = 0
    for result in results:
        for diagnostic in result.diagnostics:
            print(diagnostic.format(), file=sys.stderr)
            errors += diagnostic.is_error
            warnings += not diagnostic.is_error
    return errors, warnings


def _progress(enabled: bool):  # type: ignore[no-untyped-def]
    def show(position: int, total: int, path: Path) -> None:
        if enabled and total > 1:
            print(f"[{position}/{total}] {path}", file=sys.stderr)

    return show


def _load(paths: Sequence[str], verbose: bool) -> list[CompileResult]:
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise SystemExit(_usage_error(f"no such file or directory: {', '.join(missing)}"))
    results = compile_paths(paths, progress=_progress(verbose))
    if not results:
        raise SystemExit(_usage_error(f"no workflow files (*.yaml) in {', '.join(paths)}"))
    return results


def _usage_error(message: str) -> int:
    print(f"journeys: error: {message}", file=sys.stderr)
    return 2


def command_validate(args: argparse.Namespace) -> int:
    results = _load(args.paths, args.verbose)
    errors, warnings = _print_diagnostics(results)
    workflows = sum(1 for r in results if r.workflow is not None or r.file.endswith(".yaml"))
    if errors:
        print(f"✗ {errors} error(s), {warnings} warning(s) in {workflows} file(s)", file=sys.stderr)
        return 1
    valid = sum(1 for r in results if r.machine is not None)
    print(f"✓ {valid} workflow(s) valid" + (f", {warnings} warning(s)" if warnings else ""))
    return 0


def command_compile(args: argparse.Namespace) -> int:
    results = _load(args.paths, args.verbose)
    errors, _ = _print_diagnostics(results)
    if errors:
        print(f"✗ {errors} error(s): nothing written", file=sys.stderr)
        return 1
    out = Path(args.out)
    wanted = {
        f"{r.workflow.id}{MACHINE_SUFFIX}": render_machine(r.machine)
        for r in results
        if r.workflow is not None and r.machine is not None
    }
    wanted.update(
        (f"{r.workflow.id}{VIEW_SUFFIX}", render_view(r.journey))
        for r in results
        if r.workflow is not None and r.machine is not None and r.journey is not None
    )
    wanted[INDEX_FILE] = render_index(results)
    wanted[STACK_FILE] = render_stack(
        (name.removesuffix(MACHINE_SUFFIX), text)
        for name, text in sorted(wanted.items())
        if name.endswith(MACHINE_SUFFIX)
    )
    if args.check:
        return _check_outputs(out, wanted, args.prune, " ".join(args.paths))
    out.mkdir(parents=True, exist_ok=True)
    # Write every file beside its destination first, then rename: a failure leaves the
    # previous compiled set intact rather than half old, half new.
    staged: list[tuple[Path, Path]] = []
    try:
        for name, text in sorted(wanted.items()):
            handle, temporary_name = tempfile.mkstemp(dir=out, prefix=".", suffix=".tmp")
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(text)
            staged.append((Path(temporary_name), out / name))
    except OSError as error:
        for staged_path, _ in staged:
            staged_path.unlink(missing_ok=True)
        print(f"✗ could not write to {out}: {error}", file=sys.stderr)
        return 1
    changed = 0
    for temporary, target in staged:
        before = target.read_text(encoding="utf-8") if target.exists() else None
        os.replace(temporary, target)
        if before != wanted[target.name]:
            changed += 1
            print(f"  wrote {target}")
    removed = 0
    if args.prune:
        for stale in sorted(_generated(out)):
            if stale.name not in wanted:
                stale.unlink()
                removed += 1
                print(f"  removed {stale} (no workflow compiles to it)")
    print(
        f"✓ compiled {_machines(wanted)} workflow(s) into {out}/ ({changed} changed"
        + (f", {removed} removed" if removed else "")
        + ")"
    )
    return 0


def _machines(wanted: dict[str, str]) -> int:
    return sum(name.endswith(MACHINE_SUFFIX) for name in wanted)


def _generated(out: Path) -> list[Path]:
    """The per-workflow files `compile` writes into `out` (machines and views)."""
    return [*out.glob(f"*{MACHINE_SUFFIX}"), *out.glob(f"*{VIEW_SUFFIX}")]


def _check_outputs(out: Path, wanted: dict[str, str], prune: bool, sources: str) -> int:
    stale = []
    for name, text in sorted(wanted.items()):
        path = out / name
        if not path.exists():
            stale.append(f"{path} is missing")
        elif path.read_text(encoding="utf-8") != text:
            stale.append(f"{path} differs from its workflow")
    if prune and out.is_dir():
        stale += [f"{p} has no workflow" for p in sorted(_generated(out)) if p.name not in wanted]
    if stale:
        for line in stale:
            print(f"✗ {line}", file=sys.stderr)
        print(
            f"run `journeys compile {sources} --out {out}/` and commit the result", file=sys.stderr
        )
        return 1
    print(
        f"✓ {_machines(wanted)} compiled state machine(s), their views, the index and the "
        f"stack in {out}/ are current"
    )
    return 0


GRAPH_SUFFIX = {"mermaid": ".mmd", "svg": ".svg", "html": ".html"}


def command_graph(args: argparse.Namespace) -> int:
    from journeys.compiler import graph

    many = Path(args.path).is_dir()
    if many and not args.out:
        return _usage_error("drawing a directory needs --out DIR (one file per workflow)")
    results = _load([args.path], verbose=False)
    errors, _ = _print_diagnostics(results)
    if errors:
        print("✗ fix the errors above to draw", file=sys.stderr)
        return 1
    journeys = [r.journey for r in results if r.journey is not None]
    if not many:
        text = graph.render(journeys[0], args.format)
        if not args.out:
            sys.stdout.write(text)
            return 0
        target = Path(args.out)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        print(f"✓ wrote {args.format} graph of {journeys[0].workflow.id} to {target}")
        return 0
    directory = Path(args.out)
    directory.mkdir(parents=True, exist_ok=True)
    for journey in journeys:
        target = directory / f"{journey.workflow.id}{GRAPH_SUFFIX[args.format]}"
        target.write_text(graph.render(journey, args.format), encoding="utf-8")
    print(f"✓ drew {len(journeys)} workflow(s) into {directory}/")
    return 0


def command_schema(args: argparse.Namespace) -> int:
    from journeys.compiler.schema import render_schema

    text = render_schema()
    if not args.out:
        sys.stdout.write(text)
        return 0
    target = Path(args.out)
    if args.check:
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            print(
                f"✗ {target} is out of date: run `journeys schema --out {target}`", file=sys.stderr
            )
            return 1
        print(f"✓ {target} is up to date")
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    print(f"✓ wrote {target}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="journeys", description=MAIN_HELP, formatter_class=formatter
    )
    parser.add_argument("--version", action="version", version=f"journeys {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    validate = commands.add_parser(
        "validate",
        help="check workflows and report every problem",
        formatter_class=formatter,
        description="Check workflow files and print every problem at once, each with its "
        "file:line:column, the step, what is wrong and how to fix it.",
        epilog="examples:\n  journeys validate workflows/\n  journeys validate "
        "workflows/cart-abandonment.yaml\n\nexit status: 0 valid (warnings allowed), 1 errors "
        "found, 2 bad usage",
    )
    validate.add_argument(
        "paths", nargs="+", metavar="PATH", help="workflow .yaml files or directories of them"
    )
    validate.add_argument("-v", "--verbose", action="store_true", help="show progress per file")
    validate.set_defaults(run=command_validate)

    compile_ = commands.add_parser(
        "compile",
        help="compile workflows to Step Functions state machines",
        formatter_class=formatter,
        description="Validate, then write one Amazon States Language file per workflow "
        "(<id>.asl.json). Nothing is written if any workflow has an error. Resources appear "
        "as ${Substitutions} that SAM fills from DefinitionSubstitutions.",
        epilog="examples:\n  journeys compile workflows/ --out state_machines/\n  journeys "
        "compile workflows/ --out state_machines/ --check   # CI: fail if out of date",
    )
    compile_.add_argument("paths", nargs="+", metavar="PATH", help="workflow files or directories")
    compile_.add_argument(
        "--out",
        default="state_machines",
        metavar="DIR",
        help="where to write the .asl.json files (default: state_machines)",
    )
    compile_.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the files in --out are not current",
    )
    compile_.add_argument(
        "--no-prune",
        dest="prune",
        action="store_false",
        help="keep .asl.json files whose workflow no longer exists",
    )
    compile_.add_argument("-v", "--verbose", action="store_true", help="show progress per file")
    compile_.set_defaults(run=command_compile)

    graph = commands.add_parser(
        "graph",
        help="draw a workflow as Mermaid, SVG or HTML",
        formatter_class=formatter,
        description="Draw the steps of a workflow and the paths between them, labelled as in "
        "the YAML. Mermaid text pastes into GitHub comments and docs; SVG and HTML are "
        "self-contained pictures that need no network.",
        epilog="examples:\n  journeys graph workflows/cart-abandonment.yaml\n  journeys graph "
        "workflows/cart-abandonment.yaml --format html --out build/cart.html\n  journeys graph "
        "workflows/ --format html --out build/graphs/     # every workflow",
    )
    graph.add_argument("path", help="a workflow .yaml file, or a directory (with --out DIR)")
    graph.add_argument(
        "--format",
        choices=("mermaid", "svg", "html"),
        default="mermaid",
        help="output format (default: mermaid)",
    )
    graph.add_argument(
        "--out",
        metavar="FILE|DIR",
        help="write here instead of standard output (a directory for many)",
    )
    graph.set_defaults(run=command_graph)

    schema = commands.add_parser(
        "schema",
        help="print or write the JSON Schema of workflow files",
        formatter_class=formatter,
        description="The JSON Schema generated from the workflow models. Point your editor at "
        "it for completion and checking:\n  # yaml-language-server: "
        "$schema=../schema/workflow.schema.json",
    )
    schema.epilog = (
        "examples:\n  journeys schema > workflow.schema.json\n  journeys schema --out "
        "schema/workflow.schema.json --check   # CI: fail if stale"
    )
    schema.add_argument("--out", metavar="FILE", help="write here instead of standard output")
    schema.add_argument(
        "--check", action="store_true", help="with --out: exit 1 if the file is not current"
    )
    schema.set_defaults(run=command_schema)
    local_cli.add_commands(commands)
    stats_cli.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130


def format_diagnostics(diagnostics: list[Diagnostic]) -> str:
    return "\n".join(d.format() for d in diagnostics)


if __name__ == "__main__":
    sys.exit(main())
