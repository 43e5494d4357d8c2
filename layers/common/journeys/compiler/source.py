"""Read YAML into plain data plus a map from every path in it to its line and column.

PyYAML's composer keeps marks on nodes; we construct the values ourselves so that each
mapping key and list item keeps its position. Duplicate keys, which YAML silently
overwrites, are reported, because a workflow that loses a step without a word is worse
than one that does not load.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


@dataclass
class SourceDocument:
    """A parsed YAML file: its data, where each path came from, and load problems."""

    file: str
    data: Any
    positions: dict[Path, Position] = field(default_factory=dict)
    problems: list[tuple[Position, str, str]] = field(default_factory=list)

    def position_of(self, path: Path) -> Position:
        """Position of the longest prefix of `path` that exists in the document."""
        for end in range(len(path), -1, -1):
            found = self.positions.get(tuple(path[:end]))
            if found is not None:
                return found
        return Position(1, 1)

    def resolve(self, loc: tuple[Any, ...]) -> Path:
        """Turn a pydantic error location into a real data path.

        Pydantic adds union tags and model names to locations ("send_email",
        "function-after[...]"); we keep only the parts that exist in the data.
        """
        path: list[str | int] = []
        node = self.data
        for part in loc:
            in_mapping = isinstance(node, dict) and part in node
            in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
            if in_mapping or in_list:
                path.append(part)
                node = node[part]
        return tuple(path)


class Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 scalars: only true/false are booleans (so `yes:` and `no:`
    stay the words authors mean) and "21:00" is a string, not the base-60 number 1260."""


Yaml12Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^[-+]?(?:0|[1-9][0-9_]*|0x[0-9a-fA-F]+|0o[0-7]+)$"),
    list("-+0123456789"),
)
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _mark(node: yaml.Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    def __init__(self, loader: Yaml12Loader, document: SourceDocument) -> None:
        self.loader = loader
        self.document = document

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.document.positions.setdefault(path, _mark(node))
        if isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.loader.construct_object(key_node, deep=True)
                if not isinstance(key, str | int | float | bool) or key is None:
                    self.document.problems.append(
                        (_mark(key_node), "mapping keys must be plain words", "")
                    )
                    continue
                key = str(key) if not isinstance(key, str) else key
                if key in result:
                    first = self.document.positions.get((*path, key), _mark(key_node))
                    self.document.problems.append(
                        (
                            _mark(key_node),
                            f'duplicate key "{key}" (first at line {first.line}); '
                            "YAML would silently keep only the last one",
                            "remove or rename one of them",
                        )
                    )
                self.document.positions[(*path, key)] = _mark(key_node)
                result[key] = self.build(value_node, (*path, key))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        return self.loader.construct_object(node, deep=True)


def load_yaml(text: str, file: str) -> SourceDocument:
    """Parse YAML text; syntax errors become `problems`, never exceptions."""
    document = SourceDocument(file=file, data=None)
    loader = Yaml12Loader(text)
    try:
        root = loader.get_single_node()
        if root is not None:
            document.data = _Builder(loader, document).build(root, ())
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        position = Position(mark.line + 1, mark.column + 1) if mark else Position(1, 1)
        problem = " ".join(part for part in (error.context, error.problem) if part)
        document.problems.append(
            (position, f"this is not valid YAML: {problem}", "check indentation and quoting")
        )
        document.data = None
    except yaml.YAMLError as error:
        document.problems.append((Position(1, 1), f"this is not valid YAML: {error}", ""))
        document.data = None
    finally:
        loader.dispose()
    return document
