"""Parse stage: YAML data to a `Workflow`, with pydantic's errors rewritten to teach.

Pydantic reports *what* failed; a marketer needs *where* (file, line, column, step) and
*how to fix it* ("did you mean", the allowed fields or kinds).
"""

from __future__ import annotations

import types
import typing
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from journeys.compiler import models as m
from journeys.compiler.diagnostics import Diagnostic, Severity, did_you_mean
from journeys.compiler.source import Path, SourceDocument

STEP_LIST_FIELDS = frozenset({"steps", "yes", "no", "otherwise"})


def parse_workflow(document: SourceDocument) -> tuple[m.Workflow | None, list[Diagnostic]]:
    diagnostics = [
        Diagnostic(Severity.ERROR, document.file, pos.line, pos.column, message, hint)
        for pos, message, hint in document.problems
    ]
    if document.data is None and not diagnostics:
        diagnostics.append(
            Diagnostic(
                Severity.ERROR,
                document.file,
                1,
                1,
                "the file is empty",
                "start from an example in workflows/ or docs/workflow-language.md",
            )
        )
    if diagnostics:
        return None, diagnostics
    if not isinstance(document.data, dict):
        return None, [
            Diagnostic(
                Severity.ERROR,
                document.file,
                1,
                1,
                "a workflow file must be a mapping with id, name, trigger and steps",
                "see docs/workflow-language.md for the layout",
            )
        ]
    try:
        return m.Workflow.model_validate(document.data), []
    except ValidationError as error:
        return None, _merge_misspellings(
            [explain(document, item) for item in _deduplicate(error.errors())]
        )


def _merge_misspellings(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """A misspelt required field is one mistake: keep "unknown field ... did you mean x",
    drop the "missing required field x" it causes in the same step."""
    suggested = {
        (d.step, d.message.split('Did you mean "')[1].rstrip('"?'))
        for d in diagnostics
        if d.code == "extra_forbidden" and "Did you mean" in d.message
    }
    return [
        d
        for d in diagnostics
        if not (d.code == "missing" and (d.step, d.message.split('"')[1]) in suggested)
    ]


def _deduplicate(errors: list[Any]) -> list[Any]:
    seen: set[tuple[Any, ...]] = set()
    unique = []
    for item in errors:
        key = (tuple(item["loc"]), item["type"])
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique


def step_label_at(document: SourceDocument, path: Path) -> str:
    """The label (or kind) of the innermost step containing `path`, for context."""
    label = ""
    node = document.data
    for index, part in enumerate(path):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            if index > 0 and path[index - 1] in STEP_LIST_FIELDS and isinstance(node, dict):
                label = str(node.get("label") or node.get("type") or f"step {part + 1}")
        else:
            break
    return label


def explain(document: SourceDocument, item: Any) -> Diagnostic:
    loc = tuple(item["loc"])
    path = document.resolve(loc)
    kind = item["type"]
    field = loc[-1] if loc else ""
    message, hint = item["msg"], ""
    if kind == "extra_forbidden":
        allowed = sorted(_allowed_fields(loc[:-1]) or [])
        message = f'unknown field "{field}".' + did_you_mean(str(field), allowed)
        path = (*document.resolve(loc[:-1]), str(field))
        hint = f"fields allowed here: {', '.join(allowed)}" if allowed else ""
    elif kind == "missing":
        message = f'missing required field "{field}"'
        description = _field_description(loc)
        hint = description or ""
    elif kind == "union_tag_invalid":
        tag = item["ctx"]["tag"]
        expected = [t.strip(" '") for t in item["ctx"]["expected_tags"].split(",")]
        message = f'unknown step type "{tag}".' + did_you_mean(tag, expected)
        path = (*path, "type")
        hint = "step types: " + ", ".join(expected)
    elif kind == "union_tag_not_found":
        message = 'this step has no "type"'
        hint = "add type: one of " + ", ".join(m.STEP_TYPES)
    elif kind in ("condition_kind", "trigger_kind"):
        keys = m.CONDITION_KEYS if kind == "condition_kind" else m.TRIGGER_KEYS
        given = item.get("input")
        suggestion = ""
        if isinstance(given, dict):
            for key in given:
                suggestion = suggestion or did_you_mean(str(key), keys)
        what = "condition" if kind == "condition_kind" else "trigger"
        message = f"this {what} has none of the keys that say what it tests.{suggestion}"
        hint = f"a {what} starts with one of: " + ", ".join(keys)
    elif kind == "literal_error":
        expected = item["ctx"]["expected"]
        choices = [part.strip(" '") for part in expected.replace(" or ", ",").split(",")]
        given = item.get("input")
        message = f'"{given}" is not allowed for "{field}".' + did_you_mean(str(given), choices)
        hint = f"use one of: {', '.join(c for c in choices if c)}"
    elif kind == "value_error":
        message = str(item["msg"]).removeprefix("Value error, ")
    elif kind == "string_pattern_mismatch":
        given = item.get("input")
        description = _field_description(loc)
        message = f'"{given}" is not a valid value for "{field}"'
        hint = description or f"it must match {item['ctx']['pattern']}"
    elif kind in ("list_type", "dict_type", "model_type", "model_attributes_type"):
        wanted = {
            "list_type": "a list (lines starting with -)",
            "dict_type": "a mapping (key: value lines)",
        }.get(kind, "a mapping (key: value lines)")
        message = f'"{field}" must be {wanted}'
    position = document.position_of(path)
    return Diagnostic(
        Severity.ERROR,
        document.file,
        position.line,
        position.column,
        message,
        hint,
        step=step_label_at(document, path),
        code=kind,
    )


# --- Finding the model class at a pydantic location -----------------------------------


def _unwrap(annotation: Any) -> Any:
    while get_origin(annotation) is typing.Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _members(annotation: Any) -> list[tuple[str | None, Any]]:
    """Union members with their discriminator tag (if any)."""
    members = []
    for arg in get_args(annotation):
        tag = None
        if get_origin(arg) is typing.Annotated:
            for meta in arg.__metadata__:
                tag = getattr(meta, "tag", tag)
            arg = _unwrap(arg)
        members.append((tag, arg))
    return members


def _descend(annotation: Any, part: Any) -> tuple[Any, bool]:
    """One step into a type along a location part; returns (type, consumed)."""
    annotation = _unwrap(annotation)
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        for tag, member in _members(annotation):
            member_type = _unwrap(member)
            type_literal = None
            if isinstance(member_type, type) and issubclass(member_type, BaseModel):
                field_info = member_type.model_fields.get("type")
                if field_info is not None:
                    literal_args = get_args(field_info.annotation)
                    type_literal = literal_args[0] if literal_args else None
            name = getattr(member_type, "__name__", None)
            if part in (tag, type_literal, name):
                return member_type, True
        non_none = [a for a in get_args(annotation) if a is not type(None)]
        if len(non_none) == 1:
            return _descend(non_none[0], part)
        return None, False
    if origin is list and isinstance(part, int):
        return get_args(annotation)[0], True
    if origin is dict:
        return get_args(annotation)[1], True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, info in annotation.model_fields.items():
            if part in (name, info.alias):
                return info.annotation, True
    return None, True


def _type_at(loc: tuple[Any, ...]) -> Any:
    current: Any = m.Workflow
    for part in loc:
        current, _ = _descend(current, part)
        if current is None:
            return None
    return _unwrap(current)


def _allowed_fields(loc: tuple[Any, ...]) -> list[str] | None:
    model = _type_at(loc)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [info.alias or name for name, info in model.model_fields.items()]
    return None


def _field_info(loc: tuple[Any, ...]) -> FieldInfo | None:
    model = _type_at(loc[:-1])
    if isinstance(model, type) and issubclass(model, BaseModel):
        for name, info in model.model_fields.items():
            if loc[-1] in (name, info.alias):
                return info
    return None


def _field_description(loc: tuple[Any, ...]) -> str | None:
    info = _field_info(loc) if loc else None
    if info is None:
        return None
    if info.description:
        return info.description
    for meta in info.metadata:
        if getattr(meta, "description", None):
            return str(meta.description)
    return None
