"""The JSON Schema editors use agrees with the compiler on real workflows."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

from journeys.compiler.schema import workflow_schema
from journeys.compiler.source import load_yaml

WORKFLOWS = sorted(Path("workflows").glob("*.yaml"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = workflow_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_reference_workflows_match_the_schema(
    validator: jsonschema.Draft202012Validator, path: Path
) -> None:
    data = load_yaml(path.read_text(encoding="utf-8"), str(path)).data
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(data)]
    assert not errors


def test_schema_rejects_unknown_fields_and_kinds(
    validator: jsonschema.Draft202012Validator,
) -> None:
    base = {"id": "x", "name": "X", "trigger": {"event": "a"}, "steps": [{"type": "end"}]}
    assert validator.is_valid(base)
    assert not validator.is_valid({**base, "colour": "red"})
    assert not validator.is_valid({**base, "steps": [{"type": "teleport"}]})
    assert not validator.is_valid({**base, "steps": [{"type": "wait", "label": "W", "for": "2"}]})


def test_committed_schema_is_current() -> None:
    from journeys.compiler.schema import render_schema

    assert Path("schema/workflow.schema.json").read_text(encoding="utf-8") == render_schema()
