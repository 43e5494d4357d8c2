"""Every message template in the library renders, with full data and with none."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from journeys.templates import SMS_SEGMENT, TEMPLATE_ADAPTER, render, variables_used

TEMPLATES = sorted(Path("workflows/templates").glob("*.yaml"))
FULL = {
    "contact": {
        "id": "c-1",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.com",
        "plan": "pro",
        "score": 42,
        "birthday": "1815-12-10",
        "due_date": "2026-12-01",
    },
    "event": {"product_name": "Trail shoes <size 40>", "course_id": "py-101", "amount": 19.9},
    "data": {},
    "workflow": {"id": "demo", "name": "Demo"},
    "links": {
        "unsubscribe": "https://example.com/u/sig",
        "preferences": "https://example.com/p/sig",
    },
}
EMPTY = {"contact": {}, "event": {}, "data": {}, "workflow": {}, "links": {}}


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.stem)
def test_template_renders(path: Path) -> None:
    template = TEMPLATE_ADAPTER.validate_python(yaml.safe_load(path.read_text(encoding="utf-8")))
    for context in (FULL, EMPTY):
        rendered = render(template, context)
        assert all(isinstance(text, str) for text in rendered.values())
    full = render(template, FULL)
    if template.channel == "email":
        assert full["subject"].strip() and full["html"].strip() and full["text"].strip()
        assert "<size 40>" not in full["html"]  # autoescaped
    if template.channel == "sms":
        assert len(full["text"]) <= 2 * SMS_SEGMENT


def test_marketing_emails_carry_an_unsubscribe_link() -> None:
    missing = []
    for path in TEMPLATES:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        marketing = data["channel"] == "email" and not data.get("transactional")
        if marketing and "links.unsubscribe" not in data["html"]:
            missing.append(path.name)
    assert not missing


def test_variables_used_finds_roots_fields_and_lines() -> None:
    uses = variables_used(
        "Hi {{ contact.first_name }}\n{% for p in data.recs %}{{ p.name }}{% endfor %}"
    )
    assert {(u.root, u.first, u.line) for u in uses} == {
        ("contact", "first_name", 1),
        ("data", "recs", 2),
    }
