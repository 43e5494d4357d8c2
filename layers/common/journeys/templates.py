"""Message templates: the content of every email, SMS, push and alert.

A template is a YAML file in `workflows/templates/<name>.yaml` whose `channel` says which
fields it has. Text fields are Jinja templates rendered in a sandbox (HTML autoescaped) with:

- `contact`  the contact's attributes (`contact.first_name`, `contact.plan`),
- `event`    the properties of the event that started the journey (event triggers only),
- `data`     results of earlier `fetch` steps (`data.recommendations`),
- `workflow` the workflow's `id` and `name`,
- `links`    `unsubscribe` and `preferences` URLs, signed per contact.

Anything else is an error the compiler reports before a marketer sends a broken message.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Annotated, Any, Literal

from jinja2 import ChainableUndefined, nodes
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

TEMPLATE_ROOTS = ("contact", "event", "data", "workflow", "links")
#: Names Jinja itself provides inside templates.
JINJA_GLOBALS = ("loop", "range", "dict", "lipsum", "cycler", "joiner", "namespace", "caller")


class _Template(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str | None = None


class EmailTemplate(_Template):
    channel: Literal["email"]
    transactional: bool = Field(
        False,
        description="A service message (receipt, payment reminder): needs no unsubscribe "
        "link. Marketing email must link to {{ links.unsubscribe }}.",
    )
    subject: str = Field(min_length=1, max_length=200)
    preheader: str | None = None
    html: str = Field(min_length=1)
    text: str = Field(min_length=1, description="Plain-text part; keep it for deliverability.")


class SmsTemplate(_Template):
    channel: Literal["sms", "whatsapp"]
    text: str = Field(min_length=1)


class PushTemplate(_Template):
    channel: Literal["push", "web_push", "in_app", "on_site"]
    title: str = Field(min_length=1, max_length=120)
    body: str = Field(min_length=1)
    url: str | None = None
    button: str | None = None


class TeamTemplate(_Template):
    channel: Literal["team"]
    subject: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1)


MessageTemplate = Annotated[
    EmailTemplate | SmsTemplate | PushTemplate | TeamTemplate, Field(discriminator="channel")
]
TEMPLATE_ADAPTER: TypeAdapter[Any] = TypeAdapter(MessageTemplate)

TEXT_FIELDS = ("subject", "preheader", "html", "text", "title", "body", "url", "button")

#: SMS longer than this is split into several billed segments.
SMS_SEGMENT = 160


def environment(html: bool = False) -> SandboxedEnvironment:
    # Missing values render empty instead of failing the send: contact attributes are
    # free-form and a fetch may fail (on_failure: continue). The compiler already rejects
    # variables no step can know; `| default(...)` covers the rest.
    return SandboxedEnvironment(
        autoescape=html, undefined=ChainableUndefined, trim_blocks=True, lstrip_blocks=True
    )


@dataclass(frozen=True, slots=True)
class VariableUse:
    """A template reads `root.first` (`first` is "" for the bare root)."""

    root: str
    first: str
    line: int  # 1-based, inside the field's text


def variables_used(source: str) -> list[VariableUse]:
    """Every variable a template reads, with the line it is read on.

    Raises jinja2.TemplateSyntaxError for broken templates.
    """
    tree = environment().parse(source)
    bound: set[str] = set(JINJA_GLOBALS)
    for statement in tree.find_all((nodes.Assign, nodes.For, nodes.With)):
        targets: list[nodes.Node]
        if isinstance(statement, nodes.With):
            targets = list(statement.targets)
        elif isinstance(statement, nodes.Assign | nodes.For):
            targets = [statement.target]
        else:
            continue
        for target in targets:
            if isinstance(target, nodes.Name):
                bound.add(target.name)
            bound.update(name.name for name in target.find_all(nodes.Name))
    for macro in tree.find_all(nodes.Macro):
        bound.update(arg.name for arg in macro.args)
    uses: dict[tuple[str, str], VariableUse] = {}
    for node in _walk(tree):
        if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
            if node.node.ctx == "load" and node.node.name not in bound:
                use = VariableUse(node.node.name, node.attr, node.lineno)
                uses.setdefault((use.root, use.first), use)
        elif isinstance(node, nodes.Getitem) and isinstance(node.node, nodes.Name):
            key = node.arg.value if isinstance(node.arg, nodes.Const) else ""
            if node.node.ctx == "load" and node.node.name not in bound:
                use = VariableUse(node.node.name, str(key), node.lineno)
                uses.setdefault((use.root, use.first), use)
        elif isinstance(node, nodes.Name) and node.ctx == "load" and node.name not in bound:
            use = VariableUse(node.name, "", node.lineno)
            uses.setdefault((use.root, use.first), use)
    # A bare root is only worth reporting when nothing more specific was.
    roots_with_fields = {root for root, first in uses if first}
    return [u for u in uses.values() if u.first or u.root not in roots_with_fields]


def _walk(node: nodes.Node) -> Iterator[nodes.Node]:
    yield node
    for child in node.iter_child_nodes():
        yield from _walk(child)


def render(template: Any, context: Mapping[str, Any]) -> dict[str, str]:
    """Render every text field of a parsed template (HTML fields autoescaped)."""
    rendered: dict[str, str] = {}
    for name in TEXT_FIELDS:
        source = getattr(template, name, None)
        if source is None:
            continue
        env = environment(html=name == "html")
        rendered[name] = env.from_string(source).render(**context)
    return rendered


def template_path(directory: FsPath, name: str) -> FsPath:
    return directory / f"{name}.yaml"
