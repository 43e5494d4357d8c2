"""Parse stage: YAML data to a `Workflow`, with pydantic's errors rewritten to teach.

Pydantic reports *what* failed; a marketer needs *where* (file, line, column, step) and
*how to fix it* ("did you mean", the allowed fields or kinds).
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

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
        return None, explain_all(document, error)


def explain_all(
    document: SourceDocument, error: ValidationError, root: Any = m.Workflow
) -> list[Diagnostic]:
    """Every error of a failed validation of `document` against `root`, taught."""
    relevant = _relevant(document, _deduplicate(error.errors()), root)
    return _merge_misspellings([explain(document, item, root) for item in relevant])


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


#: What each "no kind key" error is about: (what it is called, the keys that say the kind).
KIND_ERRORS: dict[str, tuple[str, tuple[str, ...]]] = {
    "condition_kind": ("condition", tuple(m.CONDITION_KEYS)),
    "trigger_kind": ("trigger", tuple(m.TRIGGER_KEYS)),
    "rule_kind": ("rule", m.SEGMENT_RULE_KINDS),
}


def explain(document: SourceDocument, item: Any, root: Any = m.Workflow) -> Diagnostic:
    """One pydantic error as a diagnostic at its place in the file; `root` is the model
    the whole document was validated against (a workflow, a segment)."""
    loc = tuple(item["loc"])
    path = locate(document.data, loc, root).path
    kind = item["type"]
    # The field is the last part of the location that exists in the data (pydantic adds
    # union member names such as "literal['never','always']"); a missing field is not there.
    named = [part for part in path if isinstance(part, str)]
    field = loc[-1] if kind == "missing" or not named else named[-1]
    message, hint = item["msg"], ""
    if kind == "extra_forbidden":
        field = loc[-1]
    if kind == "extra_forbidden":
        allowed = sorted(_allowed_fields(document, loc[:-1], root) or [])
        message = f'unknown field "{field}".' + did_you_mean(str(field), allowed)
        path = (*locate(document.data, loc[:-1], root).path, str(field))
        hint = f"fields allowed here: {', '.join(allowed)}" if allowed else ""
    elif kind == "missing":
        message = f'missing required field "{field}"'
        description = _field_description(document, loc, root)
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
    elif kind in KIND_ERRORS:
        what, keys = KIND_ERRORS[kind]
        given = item.get("input")
        suggestion = ""
        if isinstance(given, dict):
            for key in given:
                suggestion = suggestion or did_you_mean(str(key), keys)
        message = f"this {what} has none of the keys that say what it tests.{suggestion}"
        hint = f"a {what} starts with one of: " + ", ".join(keys)
    elif kind == "literal_error":
        expected = item["ctx"]["expected"]
        choices = [part.strip(" '") for part in expected.replace(" or ", ",").split(",")]
        given = item.get("input")
        message = f'"{given}" is not allowed for "{field}".' + did_you_mean(str(given), choices)
        hint = f"use one of: {', '.join(c for c in choices if c)}"
        field_end = max(i for i, part in enumerate(loc) if part == field) + 1
        described = _field_description(document, loc[:field_end], root) or ""
        if described and all(choice in described for choice in choices if choice):
            hint = f"use {described}"  # it names the other forms too (re_entry: {after: …})
    elif kind == "value_error":
        message = str(item["msg"]).removeprefix("Value error, ")
        if message.startswith("must ") and isinstance(field, str):
            message = f'"{field}" {message}'
    elif kind == "string_pattern_mismatch":
        given = item.get("input")
        message = f'"{given}" is not a valid value for "{field}"'
        hint = (
            m.PATTERN_HELP.get(item["ctx"]["pattern"])
            or _field_description(document, loc, root)
            or ""
        )
        hint = hint or f"it must match {item['ctx']['pattern']}"
    elif kind in ("list_type", "dict_type", "model_type", "model_attributes_type"):
        wanted = {
            "list_type": "a list (lines starting with -)",
            "dict_type": "a mapping (key: value lines)",
        }.get(kind, "a mapping (key: value lines)")
        message = f'"{field}" must be {wanted}'
    elif kind == "too_short":
        message = f'"{field}" needs at least {item["ctx"]["min_length"]} item(s)'
    elif kind == "string_too_short":
        message = f'"{field}" must not be empty'
    elif str(message).startswith("Input should be"):
        message = f'"{field}" ' + str(message).replace("Input should be", "must be", 1)
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


# --- Reading pydantic locations -------------------------------------------------------
#
# A pydantic location mixes keys of the data with names of union members: a step's type
# ("goto"), a discriminator tag ("event", which is also a key of the data), a marker such
# as "tagged-union[...]", "list[...]", "literal['never','always']" or "str". Walking the
# location with the model types beside the data tells the two apart.

SCALARS = ("str", "int", "float", "bool")


@dataclass(frozen=True)
class Located:
    path: Path  # where in the data
    model: Any  # the type expected there
    plausible: bool  # False when the error comes from a union member of another shape


def _unwrap(annotation: Any) -> Any:
    while True:
        if get_origin(annotation) is typing.Annotated:
            annotation = get_args(annotation)[0]
            continue
        if _is_union(annotation):
            members = [a for a in get_args(annotation) if a is not type(None)]
            if len(members) == 1:
                annotation = members[0]
                continue
        return annotation


def _is_union(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType)


def _members(annotation: Any) -> list[tuple[str | None, Any]]:
    """Union members with their discriminator tag (if any), unwrapped."""
    members = []
    for arg in get_args(annotation):
        tag = None
        if get_origin(arg) is typing.Annotated:
            for meta in arg.__metadata__:
                tag = getattr(meta, "tag", tag)
        if arg is not type(None):
            members.append((tag, _unwrap(arg)))
    return members


def _type_literal(member: Any) -> Any:
    if isinstance(member, type) and issubclass(member, BaseModel):
        info = member.model_fields.get("type")
        if info is not None and get_args(info.annotation):
            return get_args(info.annotation)[0]
    return None


def _matches(member: Any, tag: str | None, part: Any) -> bool:
    if not isinstance(part, str):
        return False
    name = getattr(member, "__name__", "")
    if part in (tag, _type_literal(member)) or (name and part == name):
        return True
    origin = get_origin(member)
    if part.startswith("list[") and origin is list:
        return True
    if part.startswith("literal[") and origin is Literal:
        return True
    if part.startswith("tagged-union[") and _is_union(member):
        return True
    return bool(part.startswith("function-") and name and part.endswith(f"{name}]"))


def _shape_of_type(annotation: Any) -> str:
    if get_origin(annotation) is list:
        return "list"
    if (
        get_origin(annotation) is dict
        or _is_union(annotation)
        or (isinstance(annotation, type) and issubclass(annotation, BaseModel))
    ):
        return "mapping"
    return "scalar"


def _shape_of_data(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    return "mapping" if isinstance(value, dict) else "scalar"


def _child_type(annotation: Any, part: Any) -> Any:
    origin = get_origin(annotation)
    if origin is list:
        return get_args(annotation)[0]
    if origin is dict:
        return get_args(annotation)[1]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, info in annotation.model_fields.items():
            if part in (name, info.alias):
                return info.annotation
    return None


def locate(data: Any, loc: tuple[Any, ...], root: Any = m.Workflow) -> Located:
    model: Any = root
    node, path, plausible = data, [], True
    for part in loc:
        model = _unwrap(model)
        if _is_union(model):
            member = next((t for tag, t in _members(model) if _matches(t, tag, part)), None)
            if member is not None:
                plausible = plausible and _shape_of_type(member) == _shape_of_data(node)
                model = member
                continue
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        ):
            node = node[part]
            path.append(part)
        model = _child_type(model, part)
    return Located(tuple(path), _unwrap(model), plausible)


def _relevant(document: SourceDocument, errors: list[Any], root: Any = m.Workflow) -> list[Any]:
    """Keep errors from union members of the shape the author wrote: `trigger: {evnt: x}`
    fails as one trigger and as a list of triggers; only the first says something useful.
    When every member disagrees, keep them all."""
    kept = [item for item in errors if locate(document.data, tuple(item["loc"]), root).plausible]
    return kept or errors


def _allowed_fields(
    document: SourceDocument, loc: tuple[Any, ...], root: Any = m.Workflow
) -> list[str] | None:
    model = locate(document.data, loc, root).model
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [info.alias or name for name, info in model.model_fields.items()]
    return None


def _field_description(
    document: SourceDocument, loc: tuple[Any, ...], root: Any = m.Workflow
) -> str | None:
    if not loc:
        return None
    model = locate(document.data, loc[:-1], root).model
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return None
    for name, info in model.model_fields.items():
        if loc[-1] in (name, info.alias):
            if info.description:
                return info.description
            for meta in info.metadata:
                if getattr(meta, "description", None):
                    return str(meta.description)
    return None
