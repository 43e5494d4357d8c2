"""Compiler benchmarks; prints its figures (no assertions: targets are read, not enforced).

1. Validate + compile a generated 500-step workflow (every common step kind, nested
   branches, jumps): wall time per run and peak memory.
2. States per workflow step for every reference workflow in workflows/: what a marketer
   writes versus what Step Functions executes (and bills per transition).

Run: `make bench` or `.venv/bin/python bench/bench_compiler.py [--steps 500] [--runs 5]`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import yaml

from journeys.compiler.pipeline import compile_paths, compile_text
from journeys.compiler.validate import TemplateIndex

ROOT = Path(__file__).resolve().parents[1]

TEMPLATE = {
    "channel": "email",
    "subject": "Hi {{ contact.first_name }}",
    "html": "<p>Hi</p>",
    "text": "Hi",
}


def count_steps(items: list[dict[str, object]]) -> int:
    total = 0
    for item in items:
        total += 1
        for key in ("yes", "no", "steps", "otherwise"):
            total += count_steps(item.get(key, []))  # type: ignore[arg-type]
        for nested in item.get("paths", []) + item.get("variants", []):  # type: ignore[operator]
            total += count_steps(nested.get("steps", []))
    return total


def generated_workflow(steps: int) -> dict[str, object]:
    """A deterministic workflow of exactly `steps` steps mixing every common kind."""
    for budget in range(steps, steps * 2):
        workflow = _generate(budget)
        if count_steps(workflow["steps"]) >= steps:  # type: ignore[arg-type]
            return workflow
    raise AssertionError("generator cannot reach the requested size")


def _generate(steps: int) -> dict[str, object]:
    made = 0

    def block(depth: int, budget: int) -> list[dict[str, object]]:
        nonlocal made
        items: list[dict[str, object]] = []
        while budget > 0:
            made += 1
            n = made
            shape = n % 9
            if shape == 0 and depth < 3 and budget > 6:
                inner = budget // 3
                items.append(
                    {
                        "type": "decision",
                        "label": f"Engaged {n}?",
                        "condition": {"attribute": "score", "gt": n},
                        "yes": block(depth + 1, inner),
                    }
                )
                budget -= inner + 1
            elif shape == 1:
                items.append(
                    {
                        "type": "send_email",
                        "id": f"mail-{n}",
                        "label": f"Email {n}",
                        "template": "note",
                    }
                )
            elif shape == 2:
                items.append({"type": "wait", "label": f"Wait {n}", "for": "1 h"})
            elif shape == 3:
                items.append(
                    {
                        "type": "wait_for_event",
                        "label": f"Clicked {n}?",
                        "event": "clicked",
                        "timeout": "1 day",
                        "yes": [{"type": "change_score", "label": f"Score {n}", "by": 5}],
                    }
                )
                made += 1
                budget -= 1
            elif shape == 4:
                items.append({"type": "add_tag", "label": f"Tag {n}", "tag": f"t{n}"})
            elif shape == 5 and depth < 3 and budget > 6:
                inner = budget // 4
                items.append(
                    {
                        "type": "split",
                        "label": f"Plan {n}",
                        "paths": [
                            {
                                "label": "Pro",
                                "condition": {"attribute": "plan", "equals": "pro"},
                                "steps": block(depth + 1, inner),
                            }
                        ],
                    }
                )
                budget -= inner + 1
            elif shape == 6:
                items.append(
                    {
                        "type": "fetch",
                        "label": f"Fetch {n}",
                        "url": "https://example.com/x",
                        "save_as": f"d{n}",
                    }
                )
            elif shape == 7:
                items.append(
                    {
                        "type": "ab_split",
                        "label": f"Test {n}",
                        "variants": [
                            {"label": f"A {n}", "weight": 50},
                            {
                                "label": f"B {n}",
                                "weight": 50,
                                "steps": [
                                    {"type": "send_sms", "label": f"SMS {n}", "template": "sms"}
                                ],
                            },
                        ],
                    }
                )
                made += 1
                budget -= 1
            else:
                items.append(
                    {"type": "set_attribute", "label": f"Set {n}", "attribute": "x", "value": n}
                )
            budget -= 1
        return items

    body = block(0, steps - 1)
    body.append({"type": "end", "label": "Finished"})
    return {
        "id": "generated",
        "name": "Generated",
        "trigger": {"event": "signed_up"},
        "settings": {"time_zone": "Europe/Paris"},
        "goal": {"label": "Converted", "event": "paid"},
        "steps": body,
    }


def bench_large(steps: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        templates = Path(directory) / "templates"
        templates.mkdir()
        (templates / "note.yaml").write_text(yaml.safe_dump(TEMPLATE))
        (templates / "sms.yaml").write_text(yaml.safe_dump({"channel": "sms", "text": "Hi"}))
        text = yaml.safe_dump(generated_workflow(steps), sort_keys=False)
        timings = []
        result = None
        for _ in range(runs):
            started = time.perf_counter()
            result = compile_text(text, "generated.yaml", TemplateIndex(templates))
            timings.append(time.perf_counter() - started)
        assert result is not None and result.ok, [d.format() for d in result.diagnostics][:5]
        assert result.journey is not None and result.machine is not None
        tracemalloc.start()
        compile_text(text, "generated.yaml", TemplateIndex(templates))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        written = len(result.journey.nodes)
        states = count_states(result.machine)
        print(
            f"generated workflow: {written} steps, {len(text.splitlines())} YAML lines, "
            f"{states} states"
        )
        print(
            f"  validate+compile: median {statistics.median(timings) * 1000:.0f} ms, "
            f"best {min(timings) * 1000:.0f} ms over {runs} runs; "
            f"peak memory {peak / 1e6:.1f} MB"
        )


def count_states(machine: dict[str, object]) -> int:
    total = 0
    states = machine["States"]
    assert isinstance(states, dict)
    for state in states.values():
        total += 1
        for branch in state.get("Branches", []):
            total += count_states(branch)
    return total


def bench_library() -> None:
    results = [r for r in compile_paths([ROOT / "workflows"]) if r.workflow is not None]
    print(f"\n{'workflow':32} {'steps':>5} {'states':>6} {'states/step':>11}")
    ratios = []
    for result in sorted(results, key=lambda r: r.workflow.id if r.workflow else ""):
        if result.machine is None or result.journey is None or result.workflow is None:
            print(f"{result.file}: does not compile")
            continue
        steps = sum(
            1
            for n in result.journey.nodes.values()
            if not (n.kind == "goto" and not n.step.max_times)
        )
        states = count_states(result.machine)
        ratios.append(states / steps)
        print(f"{result.workflow.id:32} {steps:5d} {states:6d} {states / steps:11.2f}")
    if ratios:
        print(f"{'mean':32} {'':5} {'':6} {statistics.mean(ratios):11.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    bench_large(args.steps, args.runs)
    bench_library()
    return 0


if __name__ == "__main__":
    sys.exit(main())
