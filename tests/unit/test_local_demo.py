"""The demo scenario of `journeys up` without a stack: the shipped file, the plan a seed
gives, the errors a broken file gets, and the SES records the simulated recipients send."""

from __future__ import annotations

import itertools
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from journeys import feedback, messaging
from journeys.contact_updates import ContactUpsert
from journeys.local.demo import (
    DEFAULT_SCENARIO,
    DemoRunner,
    InvalidScenario,
    _links,
    _unsubscribe_link,
    fill,
    load_scenario,
    main,
    parse_scenario,
    plan,
    ses_record,
)

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / DEFAULT_SCENARIO
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)

SMALL = """\
seed: 7
cast: {size: 12, id_prefix: t-, seconds_between_arrivals: [1, 3], cohorts: 2}
people:
  first_names: [Ana, Ben, Chloe]
  last_names: [Silva, Okafor]
catalog: [Shoes, Skillet]
stories:
  - id: buyer
    weight: 2
    says: adds to cart and buys
    contact: {channels: [email, sms], attributes: {cart_items: 1}}
    timeline:
      - {event: added_to_cart, properties: {product_name: "{product}"}}
      - {after: 40 min, event: checkout_completed, properties: {order_id: "{contact_id}-1"}}
      - {after: 1 day, event: app_downloaded, chance: 0.5}
  - id: reader
    weight: 1
    says: joins the newsletter
    contact: {lists: [Newsletter]}
    timeline:
      - {after: 2h, update: {attributes: {plan: pro}}}
recipients:
  mailboxes:
    - {kind: engaged, share: 1, open: 0.9, click: 0.5}
    - {kind: dormant, share: 1, open: 0.05}
"""


def problems(text: str) -> str:
    with pytest.raises(InvalidScenario) as caught:
        parse_scenario(text, "demo/scenario.yaml")
    return str(caught.value)


# --- The shipped scenario --------------------------------------------------------------


def test_the_shipped_scenario_parses_and_plays_every_kind_of_story() -> None:
    scenario = load_scenario(SHIPPED)
    arrivals = plan(scenario)
    assert len(arrivals) == scenario.cast.size
    assert [a.contact_id for a in arrivals][:2] == ["demo-001", "demo-002"]
    # a new contact every few real seconds: all of them within about three minutes
    assert 60 < arrivals[-1].at < 240
    gaps = [b.at - a.at for a, b in itertools.pairwise(arrivals)]
    low, high = scenario.cast.seconds_between_arrivals
    assert all(low <= gap <= high for gap in gaps)
    # the cast is varied: most stories and every kind of mailbox appear
    assert len({a.story for a in arrivals}) >= len(scenario.stories) - 4
    assert {a.mailbox for a in arrivals} == {m.kind for m in scenario.recipients.mailboxes}


def test_every_contact_of_the_shipped_cast_is_a_body_the_api_accepts() -> None:
    for arrival in plan(load_scenario(SHIPPED)):
        ContactUpsert.model_validate(arrival.contact)
        assert arrival.contact["channels"]["email"]["address"].endswith("@example.com")
        assert re.fullmatch(r"demo-\d{3}", arrival.contact_id)


def test_every_event_of_the_shipped_scenario_is_one_a_reference_workflow_reacts_to() -> None:
    # A typo in an event name would play a story nobody sees: every event the stories send
    # must start, resume, end or be tested by some workflow in workflows/.
    sources = "\n".join(p.read_text() for p in (ROOT / "workflows").glob("*.yaml"))
    events = {step.event for story in load_scenario(SHIPPED).stories for step in story.timeline}
    unused = sorted(name for name in events - {None} if not re.search(rf"\b{name}\b", sources))
    assert unused == []


def test_checking_the_shipped_file_from_the_command_line_lists_the_cast(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([str(SHIPPED)]) == 0
    out = capsys.readouterr().out
    assert "demo-001" in out
    assert "✓" in out.splitlines()[-1]


# --- The plan --------------------------------------------------------------------------


def test_the_same_seed_plans_the_same_cast_and_another_seed_another() -> None:
    scenario = parse_scenario(SMALL)
    assert plan(scenario) == plan(parse_scenario(SMALL))
    other = parse_scenario(SMALL.replace("seed: 7", "seed: 8"))
    assert [(a.story, a.name, a.at) for a in plan(other)] != [
        (a.story, a.name, a.at) for a in plan(scenario)
    ]


def test_a_later_cohort_continues_the_numbering_with_other_people() -> None:
    scenario = parse_scenario(SMALL)
    first, second = plan(scenario, 0), plan(scenario, 1)
    assert [a.contact_id for a in second][:2] == ["t-013", "t-014"]
    assert [a.number for a in second][-1] == 24
    people = [(a.story, a.name) for a in first]
    assert people != [(a.story, a.name) for a in second]


def test_chances_decide_which_steps_a_contact_lives() -> None:
    buyers = [a for a in plan(parse_scenario(SMALL)) if a.story == "buyer"]
    downloads = [any(x.event == "app_downloaded" for x in a.actions) for a in buyers]
    assert True in downloads and False in downloads  # chance: 0.5
    assert all(a.actions[0].event == "added_to_cart" for a in buyers)  # chance 1: always
    never = parse_scenario(SMALL.replace("chance: 0.5", "chance: 0"))
    assert not any(x.event == "app_downloaded" for a in plan(never) for x in a.actions)


def test_a_contact_has_the_channels_lists_and_attributes_of_its_story() -> None:
    arrivals = plan(parse_scenario(SMALL))
    buyer = next(a for a in arrivals if a.story == "buyer")
    reader = next(a for a in arrivals if a.story == "reader")
    assert set(buyer.contact["channels"]) == {"email", "sms"}
    assert buyer.contact["channels"]["sms"]["address"].startswith("+447700900")
    assert buyer.contact["attributes"]["cart_items"] == 1
    assert reader.contact["lists"] == {"subscribe": ["Newsletter"]}
    assert reader.actions[0].update == {"attributes": {"plan": "pro"}}
    assert reader.actions[0].after == 7200


def test_placeholders_are_filled_when_the_step_is_sent() -> None:
    values = {"contact_id": "demo-007", "product": "Skillet"}
    filled = fill(
        {"id": "{contact_id}-1", "item": ["{product}"], "starts_at": "{now + 2 days}", "n": 3},
        values,
        NOW,
    )
    assert filled == {
        "id": "demo-007-1",
        "item": ["Skillet"],
        "starts_at": "2026-11-26T10:00:00Z",
        "n": 3,
    }
    assert fill("{now}", values, NOW) == "2026-11-24T10:00:00Z"


# --- Errors in a scenario file: where, what, how to fix ----------------------------------


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        (
            SMALL.replace("  - id: reader\n    weight: 1", "  - id: reader\n    wieght: 1"),
            'demo/scenario.yaml:17:5: error: unknown field "wieght". Did you mean "weight"?',
        ),
        (
            SMALL.replace("after: 40 min", "after: 40 minuets"),
            "demo/scenario.yaml:14:10: error: unknown time unit 'minuets' in '40 minuets'; "
            'write a number and a unit, e.g. "90s"',
        ),
        (
            SMALL.replace('product_name: "{product}"', "product_name: {product}"),
            'demo/scenario.yaml:13:9: error: write "{product}" in quotes',
        ),
        (
            SMALL.replace('"{contact_id}-1"', '"{contactid}-1"'),
            "unknown placeholder {contactid}. Did you mean contact_id?",
        ),
        (
            SMALL.replace("update: {attributes:", "update: {atributes:"),
            'demo/scenario.yaml:21:9: error: unknown field "atributes" in update. '
            'Did you mean "attributes"?',
        ),
        (
            SMALL.replace("{after: 2h, update:", "{after: 2h, event: x, update:"),
            'give either "event" or "update" (a contact change), not both',
        ),
        (
            SMALL.replace("[1, 3]", "[3, 1]"),
            "demo/scenario.yaml:2:33: error: write the shorter time first: [1, 3]",
        ),
        (
            SMALL.replace("[email, sms]", "[email, sns]"),
            'demo/scenario.yaml:11:33: error: "sns" is not allowed for "channels". '
            'Did you mean "sms"?',
        ),
        (
            SMALL.replace(
                "last_names: [Silva, Okafor]",
                "last_names: [Silva, Okafor]\n  time_zones: [Europe/Lisbn]",
            ),
            "unknown time zone 'Europe/Lisbn'; use an IANA name like Europe/Paris. "
            'Did you mean "Europe/Lisbon"?',
        ),
        (
            SMALL.replace("open: 0.9", "open: 90"),
            'demo/scenario.yaml:24:33: error: "open" must be less than or equal to 1',
        ),
        (
            SMALL.replace("event: added_to_cart", "event: added to cart"),
            '"added to cart" is not a valid value for "event"\n'
            "    hint: event names start with a letter",
        ),
        (
            SMALL.replace("seed: 7", "seed: [7"),
            "demo/scenario.yaml:2:5: error: this is not valid YAML",
        ),
        ("", "error: a scenario file is a mapping with seed, cast, people, stories"),
        (
            SMALL.replace("after: 40 min", "after: 40"),
            'demo/scenario.yaml:14:10: error: 40 needs a unit of journey time, e.g. "40 min"',
        ),
    ],
    ids=[
        "misspelt-field",
        "bad-duration",
        "unquoted-placeholder",
        "unknown-placeholder",
        "bad-update",
        "event-and-update",
        "range-backwards",
        "unknown-channel",
        "time-zone",
        "share-over-one",
        "event-name",
        "yaml-syntax",
        "empty",
        "number-without-unit",
    ],
)
def test_a_broken_scenario_says_where_what_and_how_to_fix(broken: str, expected: str) -> None:
    assert expected in problems(broken)


def test_every_problem_is_reported_at_once() -> None:
    broken = SMALL.replace("size: 12", "size: 0").replace("weight: 2", "weight: -1")
    found = problems(broken)
    assert '"size" must be greater than or equal to 1' in found
    assert '"weight" must be greater than 0' in found


def test_a_missing_scenario_file_is_an_error_that_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidScenario, match=r"nothing\.yaml:1:1: error: cannot read"):
        load_scenario(tmp_path / "nothing.yaml")


def test_the_command_line_check_lists_the_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "scenario.yaml"
    broken.write_text(SMALL.replace("says:", "sayz:", 1))
    assert main([str(broken)]) == 1
    out = capsys.readouterr().out
    assert 'unknown field "sayz". Did you mean "says"?' in out
    assert "problem(s) in" in out


# --- What the simulated recipients send ----------------------------------------------------

EMAIL: dict[str, Any] = {
    "sequence": 3,
    "at": "2026-11-24T10:00:00.123456Z",
    "channel": "email",
    "to": "ana.silva.1@example.com",
    "contact_id": "demo 001/ä",  # needs the tag encoding
    "workflow_id": "welcome-series",
    "step_id": "welcome-1",
    "subject": "Welcome to Example, Ana!",
    "body": "Hi Ana,\n\nRead our guides: https://www.example.com/guides/best.\n\n"
    "Email preferences: https://journeys.example.com/v1/unsubscribe?action=preferences&c=x\n"
    "Unsubscribe: https://journeys.example.com/v1/unsubscribe?action=unsubscribe&contact=x&sig=y\n",
    "message_id": "0100018c2f3e4a5b-ses-message-id-000000",
    "status": "sent",
}


@pytest.mark.parametrize("kind", ["Delivery", "Open", "Click", "Bounce", "Complaint"])
def test_each_ses_record_is_one_the_feedback_function_parses(kind: Any) -> None:
    at = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
    record = ses_record(
        kind,
        EMAIL,
        at,
        link="https://www.example.com/guides/best",
        source="journeys@example.com",
        configuration_set="journeys-local",
    )
    parsed = feedback.parse_event(record)
    assert parsed.event_type == kind
    assert parsed.mail.message_id == EMAIL["message_id"]
    assert parsed.mail.timestamp == datetime(2026, 11, 24, 10, 0, 0, 123000, tzinfo=UTC)
    assert messaging.decode_tag_value(parsed.mail.tag("contact_id") or "") == "demo 001/ä"
    assert (parsed.mail.tag("workflow_id"), parsed.mail.tag("step_id")) == (
        "welcome-series",
        "welcome-1",
    )
    assert parsed.mail.tag("ses:configuration-set") == "journeys-local"
    assert parsed.mail.destination == [EMAIL["to"]]


def test_a_bounce_is_a_hard_bounce_of_the_recipient_and_a_click_names_its_link() -> None:
    bounce = feedback.parse_event(ses_record("Bounce", EMAIL, NOW))
    assert bounce.bounce is not None and bounce.bounce.bounce_type == "Permanent"
    assert [r.email_address for r in bounce.bounce.bounced_recipients] == [EMAIL["to"]]
    click = feedback.parse_event(ses_record("Click", EMAIL, NOW, link="https://x.example/a"))
    assert click.click is not None and click.click.link == "https://x.example/a"


def test_recipients_click_content_links_and_unsubscribe_through_the_signed_link() -> None:
    assert _links(EMAIL["body"]) == ["https://www.example.com/guides/best"]
    assert _unsubscribe_link(EMAIL["body"]) == (
        "https://journeys.example.com/v1/unsubscribe?action=unsubscribe&contact=x&sig=y"
    )
    assert _unsubscribe_link("Hi\nUnsubscribe: reply STOP\n") is None


def test_the_banner_line_says_how_many_arrive_how_fast_and_how_often() -> None:
    runner = DemoRunner(parse_scenario(SMALL), api_url="", api_key="", aws_endpoint="")
    assert runner.describe() == (
        "12 synthetic contacts arrive over about 1 min, 2 times; "
        "simulated recipients open, click, bounce and unsubscribe"
    )


# --- The runner never takes the stack down --------------------------------------------------


def test_the_runner_survives_a_stack_that_does_not_answer_and_stops_at_once() -> None:
    # GIVEN a scenario whose contacts arrive at once, and an API nobody listens on
    scenario = parse_scenario(SMALL.replace("[1, 3]", "[0, 0]"))
    runner = DemoRunner(
        scenario,
        api_url="http://127.0.0.1:9",  # the discard port: connections are refused
        api_key="k",
        aws_endpoint="http://127.0.0.1:9",
        progress=lambda line: pytest.fail(f"nobody arrived, yet: {line}"),
        timeout=1,
    )
    # WHEN it runs for a moment and is stopped
    runner.start()
    deadline = time.monotonic() + 10
    while runner.tally().get("failed", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    runner.stop()
    # THEN the failures were counted, nothing raised, and stopping took no time
    assert runner.tally().get("failed", 0) >= 2
    assert runner.tally().get("arrivals", 0) == 0
    assert time.monotonic() - started < 3
