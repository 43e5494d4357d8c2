"""Write throwaway workflows and templates to a temp dir and compile them."""

from __future__ import annotations

import textwrap
from pathlib import Path

from journeys.compiler.diagnostics import Diagnostic
from journeys.compiler.pipeline import CompileResult, compile_paths

EMAIL = """\
channel: email
subject: "Hello {{ contact.first_name | default('there') }}"
html: '<p>Hello</p><a href="{{ links.unsubscribe }}">Unsubscribe</a>'
text: "Hello"
"""


def write_workflow(
    directory: Path, text: str, name: str = "demo", templates: dict[str, str] | None = None
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "templates").mkdir(exist_ok=True)
    for template_name, body in (templates or {"hello": EMAIL}).items():
        (directory / "templates" / f"{template_name}.yaml").write_text(
            textwrap.dedent(body), encoding="utf-8"
        )
    path = directory / f"{name}.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def compile_one(
    directory: Path, text: str, name: str = "demo", templates: dict[str, str] | None = None
) -> CompileResult:
    write_workflow(directory, text, name, templates)
    results = compile_paths([directory / f"{name}.yaml"])
    primary = results[0]
    for extra in results[1:]:  # template problems come as their own results
        primary.diagnostics.extend(extra.diagnostics)
    return primary


def only(diagnostics: list[Diagnostic], code: str) -> Diagnostic:
    found = [d for d in diagnostics if d.code == code]
    assert len(found) == 1, f"expected one {code!r}, got: " + "\n".join(
        d.format() for d in diagnostics
    )
    return found[0]
