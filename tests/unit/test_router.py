"""The router's pure parts: messages, the workflow index, trigger matching, re-entry rules,
execution names and how StartExecution errors are classified (no AWS)."""

from __future__ import annotations

import hashlib
import json
import random
import re
import string
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from journeys import router
from journeys.compiler.models import ReEntryAfter
from journeys.durations import parse_duration

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SAFE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")

INDEX: dict[str, Any] = {
    "workflows": {
        "cart": {
            "name": "Cart",
            "triggers": [{"key": "event:added_to_cart", "event": "added_to_cart"}],
            "settings": {"re_entry": {"after": "1 day"}},
            "goal": "event:checkout_completed",
            "exits": ["event:unsubscribed"],
        },
        "pricing": {
            "name": "Pricing visitors",
            "triggers": [
                {
                    "key": "event:page_viewed",
                    "event": "page_viewed",
                    "where": {"url": {"contains": "/pricing"}},
                },
                {"key": "event:trial_ended", "event": "trial_ended", "where": {"converted": False}},
                {
                    "key": "event:article_read",
                    "event": "article_read",
                    "where": {"slug": {"one_of": ["buyers-guide", "roi"]}},
                },
                {"key": "event:page_viewed", "event": "page_viewed"},
            ],
            "settings": {"re_entry": "always", "time_zone": "Europe/London"},
        },
        "vip": {
            "name": "VIP",
            "triggers": [{"key": "tag_added:vip", "tag_added": "vip"}],
            "settings": {"re_entry": "never"},
        },
        "lapsed": {
            "name": "Lapsed",
            "triggers": [{"key": "tag_removed:customer", "tag_removed": "customer"}],
        },
        "welcome": {
            "name": "Welcome",
            "triggers": [{"key": "list:Newsletter", "list": "Newsletter"}],
        },
        "churn": {
            "name": "Churn",
            "triggers": [
                {"key": "segment_entered:d-30", "segment_entered": "d-30"},
                {
                    "attribute_changed": "score",
                    "key": "attribute_changed:score",
                    "to": {"lt": -100},
                },
            ],
        },
        "winback": {
            "name": "Win back",
            "triggers": [{"key": "segment_exited:active", "segment_exited": "active"}],
        },
        "reminders": {
            "name": "Reminders",
            "triggers": [{"key": "attribute_changed:due_date", "attribute_changed": "due_date"}],
        },
        "birthday": {
            "name": "Birthday",
            "triggers": [{"key": "date:birthday", "date": "birthday", "at": "09:00"}],
        },
        "inactive": {
            "name": "Inactive",
            "triggers": [{"key": "inactive_for:30 days", "inactive_for": "30 days"}],
        },
    }
}


@pytest.fixture(scope="module")
def index() -> router.WorkflowIndex:
    return router.parse_index(INDEX)


def event(name: str, event_id: str = "e-1", **properties: Any) -> router.EventMessage:
    return router.EventMessage(
        type="event",
        event_id=event_id,
        contact_id="c-1",
        name=name,
        properties=properties,
        occurred_at=NOW,
    )


def changed(**changes: Any) -> router.ContactChangedMessage:
    return router.ContactChangedMessage(
        type="contact_changed", event_id="chg-1", contact_id="c-1", occurred_at=NOW, **changes
    )


def matched(message: Any, index: router.WorkflowIndex) -> dict[str, str]:
    return {m.workflow_id: m.key for m in router.match(message, index, NOW)}


# --- The index -----------------------------------------------------------------------------


def test_the_compiled_index_loads() -> None:
    index = router.load_index(ROOT / "state_machines" / "index.json")
    assert len(index.workflows) == 20
    cart = index.workflows["cart-abandonment"]
    assert cart.settings.re_entry == ReEntryAfter(after=parse_duration("1 day"))
    assert cart.goal == "event:checkout_completed"
    assert index.workflows["webinar-reminders"].settings.re_entry == "always"
    assert [spec.id for spec, _ in index.candidates("event:added_to_cart")] == ["cart-abandonment"]
    assert {spec.id for spec, _ in index.candidates("segment_entered:d-30")} == {
        "cold-user-reactivation",
        "engagement-scoring",
    }


def test_the_index_is_cached_until_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "index.json"
    path.write_text(json.dumps(INDEX))
    first = router.load_index(path)
    assert router.load_index(str(path)) is first
    smaller = {"workflows": {"vip": INDEX["workflows"]["vip"]}}
    path.write_text(json.dumps(smaller, indent=4))
    assert set(router.load_index(path).workflows) == {"vip"}


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({}, '"workflows"'),
        ({"workflows": {"x": {"triggers": []}}}, "workflow 'x'"),
        ({"workflows": {"x": {"triggers": [{"key": "event:a", "evnt": "a"}]}}}, "workflow 'x'"),
        ({"workflows": {"x": {"triggers": [{"key": "event:b", "event": "a"}]}}}, "recompile"),
        ({"workflows": {"x": {"triggers": [{"event": "a"}], "settings": {"re_entry": "x"}}}}, "x"),
    ],
)
def test_a_broken_index_says_what_is_wrong(data: dict[str, Any], problem: str) -> None:
    with pytest.raises(router.WorkflowIndexError, match=re.escape(problem)):
        router.parse_index(data)


def test_a_missing_index_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(router.WorkflowIndexError, match="cannot read"):
        router.load_index(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(router.WorkflowIndexError, match="not JSON"):
        router.load_index(tmp_path / "bad.json")


# --- Matching ------------------------------------------------------------------------------


def test_an_event_enters_the_workflows_it_triggers(index: router.WorkflowIndex) -> None:
    assert matched(event("added_to_cart"), index) == {"cart": "event:added_to_cart"}
    assert matched(event("checkout_completed"), index) == {}


def test_the_trigger_carries_the_event(index: router.WorkflowIndex) -> None:
    (found,) = router.match(event("added_to_cart", sku="A1", total=40), index, NOW)
    assert found.trigger == {
        "key": "event:added_to_cart",
        "name": "added_to_cart",
        "event_id": "e-1",
        "occurred_at": "2026-11-22T12:00:00.000000Z",
        "properties": {"sku": "A1", "total": 40},
    }


@pytest.mark.parametrize(
    ("message", "enters"),
    [
        (event("page_viewed", url="https://x.com/pricing/team"), True),
        (event("trial_ended", converted=False), True),
        (event("trial_ended", converted="false"), True),
        (event("trial_ended", converted=True), False),
        (event("trial_ended"), False),
        (event("article_read", slug="roi"), True),
        (event("article_read", slug="blog"), False),
    ],
)
def test_where_filters_decide(
    index: router.WorkflowIndex, message: router.EventMessage, enters: bool
) -> None:
    assert ("pricing" in matched(message, index)) is enters


def test_a_workflow_is_entered_once_with_its_first_matching_trigger(
    index: router.WorkflowIndex,
) -> None:
    # Both page_viewed triggers match; the filtered one comes first in the workflow.
    found = router.match(event("page_viewed", url="/pricing"), index, NOW)
    assert [(m.workflow_id, m.key) for m in found] == [("pricing", "event:page_viewed")]
    # Without the filter matching, the second trigger still enters.
    assert matched(event("page_viewed", url="/blog"), index) == {"pricing": "event:page_viewed"}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"tags_added": ["vip"]}, {"vip": "tag_added:vip"}),
        ({"tags_added": ["other"]}, {}),
        ({"tags_removed": ["customer"]}, {"lapsed": "tag_removed:customer"}),
        ({"tags_added": ["customer"]}, {}),
        ({"lists_joined": ["Newsletter"]}, {"welcome": "list:Newsletter"}),
        ({"segments_entered": ["d-30"]}, {"churn": "segment_entered:d-30"}),
        ({"segments_exited": ["d-30"]}, {}),
        ({"segments_exited": ["active"]}, {"winback": "segment_exited:active"}),
        (
            {"attributes_changed": {"score": {"old": 0, "new": -120}}},
            {"churn": "attribute_changed:score"},
        ),
        ({"attributes_changed": {"score": {"old": 0, "new": -20}}}, {}),
        ({"attributes_changed": {"score": {"old": 0, "new": None}}}, {}),
        (
            {"attributes_changed": {"due_date": {"old": None, "new": "2026-12-01"}}},
            {"reminders": "attribute_changed:due_date"},
        ),
        ({"attributes_changed": {"due_date": {"old": "2026-12-01", "new": "2026-12-01"}}}, {}),
        # Date and inactivity triggers belong to sweeps: no message starts them.
        ({"attributes_changed": {"birthday": {"old": None, "new": "1990-11-22"}}}, {}),
    ],
)
def test_contact_changes_enter_their_workflows(
    index: router.WorkflowIndex, changes: dict[str, Any], expected: dict[str, str]
) -> None:
    assert matched(changed(**changes), index) == expected


def test_one_change_message_enters_each_workflow_once(index: router.WorkflowIndex) -> None:
    message = changed(
        segments_entered=["d-30"],
        attributes_changed={"score": {"old": 0, "new": -500}},
        tags_added=["vip"],
    )
    found = router.match(message, index, NOW)
    assert [(m.workflow_id, m.key) for m in found] == [
        ("vip", "tag_added:vip"),
        ("churn", "segment_entered:d-30"),
    ]
    churn = found[1].trigger
    assert churn["name"] == "segment_entered"
    assert churn["properties"] == {"segment": "d-30"}


def test_an_attribute_change_carries_old_and_new(index: router.WorkflowIndex) -> None:
    (found,) = router.match(
        changed(attributes_changed={"score": {"old": 5, "new": -101}}), index, NOW
    )
    assert found.trigger["properties"] == {"attribute": "score", "old": 5, "new": -101}


def test_no_event_starts_date_or_inactivity_triggers(index: router.WorkflowIndex) -> None:
    assert matched(event("birthday"), index) == {}
    assert matched(event("inactive_for"), index) == {}


def test_enter_workflow_enters_its_target(index: router.WorkflowIndex) -> None:
    message = router.parse_message(
        {
            "type": "enter_workflow",
            "workflow_id": "vip",
            "contact_id": "c-1",
            "event_id": "arn:aws:states:us-east-1:1:execution:m:x:go",
            "source": {"workflow_id": "lead-nurture", "step_id": "go", "execution_id": "x"},
        }
    )
    (found,) = router.match(message, index, NOW)
    assert found.workflow_id == "vip"
    assert found.trigger["key"] == "workflow:lead-nurture"
    assert found.trigger["name"] == "enter_workflow"
    assert found.trigger["occurred_at"] == "2026-11-22T12:00:00.000000Z"
    assert found.trigger["properties"]["step_id"] == "go"
    unknown = message.model_copy(update={"workflow_id": "nope"})
    assert router.match(unknown, index, NOW) == []


def test_signals_release_waits_for_events_tags_added_and_segments_entered() -> None:
    assert router.signals(event("unsubscribed", list="all")) == [
        ("event:unsubscribed", {"list": "all"})
    ]
    message = changed(
        tags_added=["vip"],
        tags_removed=["x"],
        segments_entered=["d-30"],
        segments_exited=["active"],
        lists_joined=["Leads"],
    )
    assert router.signals(message) == [
        ("tag:vip", {"tag": "vip"}),
        ("segment:d-30", {"segment": "d-30"}),
    ]


# --- Re-entry ------------------------------------------------------------------------------

DAY = ReEntryAfter(after=parse_duration("1 day"))


def previous(
    hours_ago: float, entry_id: str = "old", status: str = "running"
) -> router.PreviousEntry:
    return router.PreviousEntry(entry_id, NOW - timedelta(hours=hours_ago), status)


@pytest.mark.parametrize(
    ("rule", "last", "decision"),
    [
        ("never", None, "enter"),
        ("never", previous(24 * 400), "never"),
        ("never", previous(1, status="failed"), "enter"),
        ("always", None, "enter"),
        ("always", previous(0), "enter"),
        (DAY, None, "enter"),
        (DAY, previous(23), "too_soon"),
        (DAY, previous(24), "enter"),
        (DAY, previous(48), "enter"),
        # The latest entry is this very message: a retry, whatever the rule.
        ("never", previous(0, entry_id="this"), "retry"),
        (DAY, previous(0, entry_id="this"), "retry"),
    ],
)
def test_re_entry_rules(rule: Any, last: router.PreviousEntry | None, decision: str) -> None:
    assert router.decide_entry(rule, last, "this", NOW) == decision


# --- Execution names -----------------------------------------------------------------------


def test_execution_names_are_readable_when_they_can_be() -> None:
    name = router.execution_name("c-42", "cart-abandonment", "evt-9")
    assert name == "cart-abandonment_c-42_evt-9"
    assert router.execution_name("c-42", "cart-abandonment", "evt-9") == name


@pytest.mark.parametrize(
    ("contact_id", "event_id"),
    [
        ("user@example.com", "e-1"),  # unsafe characters
        ("c-1", "arn:aws:states:us-east-1:123456789012:execution:journeys-x:abc:go"),
        ("c_1", "e"),  # underscores would make the parts ambiguous
        ("c-1", "x" * 80),  # too long
        ("c-1", "e-r2"),  # looks like a repeat's run name
        ("名前", "イベント"),
    ],
)
def test_other_names_are_hashed(contact_id: str, event_id: str) -> None:
    name = router.execution_name(contact_id, "cart-abandonment", event_id)
    assert SAFE_NAME.match(name)
    assert len(name) <= router.ENTRY_ID_MAX
    assert re.fullmatch(r"cart-abandonment_[A-Za-z0-9-]{1,21}__[0-9a-f]{32}", name)
    assert router.execution_name(contact_id, "cart-abandonment", event_id) == name


@pytest.mark.parametrize(
    ("contact_id", "event_id", "searched"),
    [
        # An email address: the console search is "cart-abandonment_ana-example-com".
        ("ana@example.com", "e-1", "cart-abandonment_ana-example-com__"),
        # A safe contact whose event makes the name hashed keeps the contact whole.
        ("c-42", "ses:0100018f:open", "cart-abandonment_c-42__"),
        ("customer_12345678", "e-1", "cart-abandonment_customer-12345678__"),
        # Longer than fits: as much as fits, never less than 13 characters.
        ("firstname.lastname@example.com", "e-1", "cart-abandonment_firstname-lastname-ex"),
    ],
)
def test_hashed_names_keep_as_much_of_the_contact_as_fits(
    contact_id: str, event_id: str, searched: str
) -> None:
    # WHEN the name cannot be the readable one
    name = router.execution_name(contact_id, "cart-abandonment", event_id)
    # THEN a console search for the workflow and the contact (as far as it fits) finds it
    assert name.startswith(searched)
    assert len(name) <= router.ENTRY_ID_MAX


def test_even_the_longest_workflow_leaves_13_characters_of_the_contact() -> None:
    name = router.execution_name("a" * 256 + "@example.com", "w" * 48, "e")
    assert name.startswith("w" * 24 + "_" + "a" * 13 + "__")
    assert len(name) == router.ENTRY_ID_MAX


def test_short_contacts_keep_the_names_they_always_had() -> None:
    """Names already given (entries, running executions) must not change: a contact of
    up to 12 characters has the same hashed name as before the contact was kept whole."""
    name = router.execution_name("ana@ex.com", "cart-abandonment", "e-1")
    digest = hashlib.sha256(b"cart-abandonment\x00ana@ex.com\x00e-1").hexdigest()[:32]
    assert name == f"cart-abandonment_ana-ex-com__{digest}"


def test_names_leave_room_for_repeat_runs() -> None:
    longest = router.execution_name("c" * 256, "w" * 48, "e" * 256)
    assert len(longest + "-r999999") <= router.EXECUTION_NAME_MAX


def test_names_differ_whenever_contact_workflow_or_event_differ() -> None:
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits + "-_:@/. é"
    seen: dict[str, tuple[str, str, str]] = {}
    parts = [
        ("a_b", "w", "c"),
        ("a", "w", "b_c"),
        ("a", "w", "b"),
        ("a", "w", "b-r1"),
    ]
    for _ in range(3000):
        parts.append(
            tuple(  # type: ignore[arg-type]
                "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))) for _ in range(3)
            )
        )
    for contact_id, workflow_id, event_id in parts:
        name = router.execution_name(contact_id, workflow_id, event_id)
        assert SAFE_NAME.match(name), name
        assert len(name) <= router.ENTRY_ID_MAX
        assert seen.setdefault(name, (contact_id, workflow_id, event_id)) == (
            contact_id,
            workflow_id,
            event_id,
        )
        assert name + "-r1" not in seen  # no entry is named like another's repeat run


def test_the_execution_input_follows_the_contract() -> None:
    trigger = {"key": "event:a", "name": "a", "event_id": "e", "occurred_at": "t", "properties": {}}
    text = router.execution_input("c-1", "cart", "cart_c-1_e", trigger)
    assert json.loads(text) == {
        "contact_id": "c-1",
        "workflow_id": "cart",
        "entry_id": "cart_c-1_e",
        "iteration": 0,
        "trigger": trigger,
        "data": {},
    }
    assert (
        router.execution_input("c-1", "cart", "cart_c-1_e", dict(reversed(trigger.items()))) == text
    )


# --- Messages ------------------------------------------------------------------------------


def test_messages_parse() -> None:
    body = json.dumps(
        {
            "type": "event",
            "event_id": "e-1",
            "contact_id": "c-1",
            "name": "added_to_cart",
            "properties": {"sku": "A1"},
            "occurred_at": "2026-11-22T12:00:00",
            "extra": "ignored",
        }
    )
    message = router.parse_message(body.encode())
    assert isinstance(message, router.EventMessage)
    assert message.occurred_at == NOW  # no offset: UTC
    changes = router.parse_message(
        {
            "type": "contact_changed",
            "event_id": "chg-1",
            "contact_id": "c-1",
            "occurred_at": "2026-11-22T13:00:00+01:00",
            "attributes_changed": {"plan": {"old": "free", "new": "pro"}},
        }
    )
    assert isinstance(changes, router.ContactChangedMessage)
    assert changes.occurred_at == NOW
    assert changes.attributes_changed["plan"].new == "pro"
    assert changes.tags_added == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"type": "nonsense", "event_id": "e", "contact_id": "c"}', "nonsense"),
        ('{"event_id": "e", "contact_id": "c"}', "type"),
        (
            '{"type": "event", "event_id": "e", "contact_id": "c", "occurred_at": "2026-01-01T00:00:00Z"}',
            "name",
        ),
        (
            '{"type": "event", "event_id": "e", "contact_id": "", "name": "a", "occurred_at": "2026-01-01T00:00:00Z"}',
            "contact_id",
        ),
        (
            '{"type": "event", "event_id": "e", "contact_id": "c", "name": "a", "occurred_at": "soon"}',
            "occurred_at",
        ),
        ('{"type": "enter_workflow", "event_id": "e", "contact_id": "c"}', "workflow_id"),
        (
            '{"type": "contact_changed", "event_id": "e", "contact_id": "c", "occurred_at": "2026-01-01T00:00:00Z", "tags_added": "vip"}',
            "tags_added",
        ),
    ],
)
def test_invalid_messages_say_why(body: str, problem: str) -> None:
    with pytest.raises(router.InvalidMessage, match=problem):
        router.parse_message(body)
