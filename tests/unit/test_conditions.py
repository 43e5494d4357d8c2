"""Evaluating decision and split conditions on a contact's facts (pure, no AWS).

Conditions are written as the YAML a marketer writes, parsed by the real models, and every
evaluation is also run on the JSON the compiler emits for the evaluate Lambda, so the two
can never disagree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from pydantic import ValidationError

from journeys.compiler.models import Comparison
from journeys.compiler.pipeline import CompileResult
from journeys.conditions import (
    DEFAULT_BRANCH,
    EventRecord,
    Facts,
    MessageRecord,
    choose_branch,
    compare,
    evaluate,
    event_names_needed,
    needs_messages,
    parse_condition,
    walk,
    where_matches,
)
from journeys.contacts import BOUNCED, UNSUBSCRIBED, ChannelState, ContactView
from tests.helpers.workflows import compile_one

UTC_ZONE = ZoneInfo("UTC")
PARIS = ZoneInfo("Europe/Paris")
TOKYO = ZoneInfo("Asia/Tokyo")
NEW_YORK = ZoneInfo("America/New_York")

#: Friday 14 March 2025, 12:00 UTC (13:00 in Paris).
NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
WORKFLOW = "welcome"


# --- Helpers -------------------------------------------------------------------------------


def load(text: str) -> Any:
    return yaml.safe_load(text)


def comparison(text: str) -> Comparison:
    return Comparison.model_validate(load(text))


def check(text: str, value: Any, now: datetime = NOW, zone: ZoneInfo = PARIS) -> bool:
    return compare(comparison(text), value, now, zone)


def where(text: str) -> Any:
    """A `where:` filter as the model holds it (bare values stay, comparisons parse)."""
    condition = parse_condition({"started_by": "x", "where": load(text)})
    return condition.where  # type: ignore[union-attr]


def facts(
    *,
    attributes: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    segments: Mapping[str, str] | None = None,
    channels: Mapping[str, ChannelState] | None = None,
    events: Sequence[EventRecord] = (),
    messages: Sequence[MessageRecord] = (),
    trigger: Mapping[str, Any] | None = None,
    now: datetime = NOW,
    zone: ZoneInfo = PARIS,
    entered_at: datetime | None = None,
) -> Facts:
    contact = ContactView(
        contact_id="c-1",
        attributes=dict(attributes or {}),
        tags=dict(tags or {}),
        segments=dict(segments or {}),
        channels=dict(channels or {}),
    )
    return Facts(
        contact=contact,
        events=list(events),
        messages=list(messages),
        trigger=trigger if trigger is not None else {"key": "event:signed_up", "properties": {}},
        workflow_id=WORKFLOW,
        now=now,
        zone=zone,
        entered_at=entered_at,
    )


def emitted(condition_yaml: str) -> dict[str, Any]:
    """The condition's JSON exactly as the compiler emits it into the evaluate payload."""
    model = parse_condition(load(condition_yaml))
    dumped = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return json.loads(json.dumps(dumped))  # type: ignore[no-any-return]


def holds(condition_yaml: str, given: Facts) -> bool:
    """Evaluate the parsed condition, and check the emitted JSON decides the same."""
    result = evaluate(parse_condition(load(condition_yaml)), given)
    branch = choose_branch([{"branch": "yes", "condition": emitted(condition_yaml)}], given)
    assert branch == ("yes" if result else DEFAULT_BRANCH), "model and JSON disagree"
    return result


def event(name: str, ago: timedelta, **properties: Any) -> EventRecord:
    return EventRecord(name=name, occurred_at=NOW - ago, properties=properties)


def message(
    step_id: str = "welcome-email",
    *,
    workflow_id: str = WORKFLOW,
    opened: bool = False,
    clicked: tuple[str, ...] = (),
    sent_ago: timedelta = timedelta(hours=2),
) -> MessageRecord:
    sent_at = NOW - sent_ago
    return MessageRecord(
        workflow_id=workflow_id,
        step_id=step_id,
        channel="email",
        sent_at=sent_at,
        opened_at=sent_at + timedelta(minutes=5) if opened else None,
        clicked_links=clicked,
    )


HOUR, DAY = timedelta(hours=1), timedelta(days=1)


# --- Comparisons: equality and coercions ---------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected", "result"),
    [
        ("3", 3, True),  # CSV imports store numbers as text
        (Decimal("3"), 3, True),  # DynamoDB returns numbers as Decimal
        (3, "3", True),
        (3.0, 3, True),
        ("3.0", 3, True),
        (" 42 ", 42, True),
        (Decimal("19.99"), 19.99, True),  # exact decimals, no float noise
        ("abc", 3, False),
        ("NaN", 3, False),
        ("pro", "pro", True),
        ("Pro", "pro", False),  # text is case-sensitive
        ("01234", "1234", False),  # text stays text: postcodes keep their zeros
        (True, True, True),
        (False, True, False),
        ("true", True, True),
        ("TRUE", True, True),
        ("false", False, True),
        (1, True, True),
        (0, False, True),
        (True, "true", True),
        ("yes", True, False),
        (2, True, False),
        ([3], 3, False),
        ({"a": 1}, "a", False),
    ],
)
def test_equals_coerces_numbers_and_booleans_but_not_text(
    value: Any, expected: Any, result: bool
) -> None:
    assert compare(Comparison(equals=expected), value, NOW, PARIS) is result


@pytest.mark.parametrize(
    ("value", "result"),
    [("free", False), ("pro", True), (None, True), ("", True), (Decimal("1"), True)],
)
def test_not_equals_holds_for_other_and_missing_values(value: Any, result: bool) -> None:
    assert check("{not_equals: free}", value) is result


def test_not_equals_compares_numbers_numerically() -> None:
    assert check("{not_equals: 3}", "3") is False
    assert check("{not_equals: 3}", Decimal("3.00")) is False
    assert check("{not_equals: 3}", 4) is True


# --- Comparisons: order --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "value", "result"),
    [
        ("gt", 51, True),
        ("gt", 50, False),
        ("gte", 50, True),
        ("gte", Decimal("49.99"), False),
        ("lt", "49.5", True),
        ("lt", 50, False),
        ("lte", 50.0, True),
        ("lte", Decimal("50.01"), False),
        ("gt", "abc", False),
        ("gt", "Infinity", False),
        ("gt", True, False),  # a boolean is not a number
        ("gt", [60], False),
        ("gt", "2025-03-14", False),
    ],
)
def test_order_operators_need_a_number(operator: str, value: Any, result: bool) -> None:
    assert check(f"{{{operator}: 50}}", value) is result


def test_decimal_bounds_are_exact() -> None:
    # GIVEN a threshold that is no exact binary float
    # WHEN the stored value is the same decimal
    # THEN it is equal, not a rounding error either side
    assert check("{gte: 0.3}", Decimal("0.3")) is True
    assert check("{lte: 0.3}", Decimal("0.3")) is True
    assert check("{gte: 0.3}", 0.1 + 0.2) is True  # 0.30000000000000004


def test_every_operator_must_hold() -> None:
    assert check("{gte: 50, lt: 500}", 50) is True
    assert check("{gte: 50, lt: 500}", "499.99") is True
    assert check("{gte: 50, lt: 500}", 500) is False
    assert check("{starts_with: https://, contains: /pricing}", "https://x.io/pricing") is True
    assert check("{starts_with: https://, contains: /pricing}", "http://x.io/pricing") is False


# --- Comparisons: text, lists, presence ----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "result"),
    [
        ("https://shop.example.com/pricing?plan=pro", True),
        ("https://shop.example.com/PRICING", False),  # case-sensitive
        ("https://shop.example.com/", False),
        (["/pricing", "/about"], True),  # list membership
        (("/about",), False),
        ({"/pricing"}, True),  # DynamoDB string sets arrive as sets
        (12, False),
    ],
)
def test_contains_is_a_substring_or_membership_test(value: Any, result: bool) -> None:
    assert check("{contains: /pricing}", value) is result


def test_contains_on_a_list_compares_items_like_equals() -> None:
    assert check('{contains: "3"}', [1, Decimal("3")]) is True
    assert check('{contains: "3"}', ["03x"]) is False


@pytest.mark.parametrize(
    ("value", "result"),
    [("+33612345678", True), ("+44712345678", False), (33612345678, False), (None, False)],
)
def test_starts_with_needs_text(value: Any, result: bool) -> None:
    assert check('{starts_with: "+33"}', value) is result


@pytest.mark.parametrize(
    ("value", "result"),
    [
        ("FR", True),
        ("BE", True),
        ("fr", False),
        ("DE", False),
        (["DE", "CH"], True),  # a list value: any item is one of them
        (["DE", "AT"], False),
        ([], False),
    ],
)
def test_one_of_on_text_and_lists(value: Any, result: bool) -> None:
    assert check("{one_of: [FR, BE, CH]}", value) is result


def test_one_of_coerces_numbers_and_booleans() -> None:
    assert check("{one_of: [1, 2, 3]}", "2") is True
    assert check("{one_of: [1, 2, 3]}", Decimal("2.0")) is True
    assert check("{one_of: [1, 2, 3]}", 4) is False
    assert check("{one_of: [true]}", "true") is True


@pytest.mark.parametrize(
    ("value", "exists_true", "exists_false"),
    [
        ("free", True, False),
        (0, True, False),  # zero and false are values
        (False, True, False),
        ([], True, False),
        (None, False, True),
        ("", False, True),  # an empty string is no value
    ],
)
def test_exists(value: Any, exists_true: bool, exists_false: bool) -> None:
    assert check("{exists: true}", value) is exists_true
    assert check("{exists: false}", value) is exists_false


@pytest.mark.parametrize(
    "text",
    [
        "{equals: free}",
        "{equals: 0}",
        "{equals: false}",
        "{gt: 0}",
        "{gte: 0}",
        "{lt: 0}",
        "{lte: 0}",
        "{contains: a}",
        "{starts_with: a}",
        "{one_of: [a, b]}",
        "{exists: true}",
        "{is_today: true}",
        "{is_today: false}",
        "{within_last: 7 days}",
        "{within_next: 7 days}",
    ],
)
@pytest.mark.parametrize("missing", [None, ""])
def test_a_missing_value_fails_every_operator(text: str, missing: Any) -> None:
    assert check(text, missing) is False


@pytest.mark.parametrize("text", ["{exists: false}", "{not_equals: free}", "{not_equals: 0}"])
def test_a_missing_value_passes_exists_false_and_not_equals(text: str) -> None:
    assert check(text, None) is True


def test_a_missing_attribute_fails_its_condition() -> None:
    given = facts(attributes={})
    assert holds("{attribute: plan, equals: free}", given) is False
    assert holds("{attribute: plan, exists: false}", given) is True
    assert holds("{attribute: plan, not_equals: free}", given) is True
    assert holds("{not: {attribute: plan, equals: free}}", given) is True


# --- Comparisons: dates --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "result"),
    [
        ("1990-03-14", True),
        ("1990-03-15", False),
        ("2024-03-14T09:30:00", True),  # naive: a local date-time
        (date(1985, 3, 14), True),
        (datetime(1985, 3, 14, 22, 0), True),
        ("--03-14", True),  # a birthday without a year
        ("--03-15", False),
        ("--02-30", False),
        ("14/03/1990", False),
        (19900314, False),
    ],
)
def test_is_today_compares_month_and_day(value: Any, result: bool) -> None:
    assert check("{is_today: true}", value) is result


def test_is_today_false_is_a_date_on_another_day() -> None:
    assert check("{is_today: false}", "1990-07-01") is True
    assert check("{is_today: false}", "1990-03-14") is False
    assert check("{is_today: false}", "not a date") is False


def test_is_today_uses_the_contacts_time_zone() -> None:
    # GIVEN it is 23:30 UTC on 14 March, already 08:30 on 15 March in Tokyo
    late = datetime(2025, 3, 14, 23, 30, tzinfo=UTC)
    # WHEN the birthday is 15 March
    # THEN it is today in Tokyo, not yet in London-on-UTC nor in New York (19:30 on 14 March)
    assert check("{is_today: true}", "1990-03-15", now=late, zone=TOKYO) is True
    assert check("{is_today: true}", "1990-03-15", now=late, zone=UTC_ZONE) is False
    assert check("{is_today: true}", "1990-03-15", now=late, zone=NEW_YORK) is False
    assert check("{is_today: true}", "1990-03-14", now=late, zone=NEW_YORK) is True


def test_is_today_reads_an_instant_in_the_contacts_zone() -> None:
    # 23:00 UTC on 13 March is already 14 March in Paris (UTC+1 in winter)
    assert check("{is_today: true}", "2020-03-13T23:00:00Z", zone=PARIS) is True
    assert check("{is_today: true}", "2020-03-13T23:00:00Z", zone=UTC_ZONE) is False


def test_a_29_february_birthday_falls_on_28_february_in_other_years() -> None:
    feb_28_2025 = datetime(2025, 2, 28, 12, tzinfo=UTC)
    feb_28_2024 = datetime(2024, 2, 28, 12, tzinfo=UTC)
    feb_29_2024 = datetime(2024, 2, 29, 12, tzinfo=UTC)
    assert check("{is_today: true}", "2000-02-29", now=feb_28_2025) is True
    assert check("{is_today: true}", "--02-29", now=feb_28_2025) is True
    assert check("{is_today: true}", "2000-02-29", now=feb_28_2024) is False
    assert check("{is_today: true}", "2000-02-29", now=feb_29_2024) is True


@pytest.mark.parametrize(
    ("value", "result"),
    [
        ("2025-03-10T12:00:00Z", True),
        ("2025-03-07T12:00:00Z", True),  # exactly 7 days ago: inclusive
        ("2025-03-07T11:59:59Z", False),
        ("2025-03-14T12:00:00Z", True),  # now
        ("2025-03-14T12:00:01Z", False),  # the future is not "in the last"
        ("2025-03-10T13:00:00+01:00", True),
        (datetime(2025, 3, 10, tzinfo=UTC), True),
        ("2025-03-01", False),
        ("yesterday", False),
        (1741950000, False),  # epoch numbers are not read as dates
    ],
)
def test_within_last(value: Any, result: bool) -> None:
    assert check("{within_last: 7 days}", value) is result


@pytest.mark.parametrize(
    ("value", "result"),
    [
        ("2025-03-16T12:00:00Z", True),
        ("2025-03-21T12:00:00Z", True),  # exactly 7 days ahead: inclusive
        ("2025-03-21T12:00:01Z", False),
        ("2025-03-14T11:59:59Z", False),  # the past is not "in the next"
    ],
)
def test_within_next(value: Any, result: bool) -> None:
    assert check("{within_next: 7 days}", value) is result


def test_a_date_without_a_time_is_local_midnight() -> None:
    # GIVEN now is 13:00 in Paris on 14 March: Paris midnight was 13 h ago (23:00 UTC)
    assert check("{within_last: 13h}", "2025-03-14", zone=PARIS) is True
    assert check("{within_last: 12h}", "2025-03-14", zone=PARIS) is False
    # Midnight in UTC was only 12 h ago
    assert check("{within_last: 12h}", "2025-03-14", zone=UTC_ZONE) is True
    # The next Paris midnight is in 11 h
    assert check("{within_next: 11h}", "2025-03-15", zone=PARIS) is True
    assert check("{within_next: 10h}", "2025-03-15", zone=PARIS) is False


def test_a_date_time_without_offset_is_local() -> None:
    # 12:30 in Paris is 11:30 UTC: 30 minutes ago; in Tokyo it would be 03:30 UTC
    assert check("{within_last: 1h}", "2025-03-14T12:30:00", zone=PARIS) is True
    assert check("{within_last: 1h}", "2025-03-14T12:30:00", zone=TOKYO) is False


def test_a_naive_now_is_utc() -> None:
    assert check("{within_last: 1h}", "2025-03-14T11:30:00Z", now=NOW.replace(tzinfo=None))


# --- Property filters ----------------------------------------------------------------------


def test_no_filter_always_matches() -> None:
    assert where_matches(None, {}, NOW, PARIS) is True
    assert where_matches({}, {"a": 1}, NOW, PARIS) is True


def test_bare_values_mean_equals_and_every_filter_must_hold() -> None:
    filters = where("{url: {contains: /pricing}, plan: free, total: {gte: 50, lt: 500}}")
    properties = {"url": "https://x.io/pricing", "plan": "free", "total": "120"}
    assert where_matches(filters, properties, NOW, PARIS) is True
    assert where_matches(filters, {**properties, "plan": "pro"}, NOW, PARIS) is False
    assert where_matches(filters, {**properties, "total": 500}, NOW, PARIS) is False
    assert where_matches(filters, {"url": "https://x.io/pricing", "plan": "free"}, NOW, PARIS) is (
        False
    )


def test_bare_values_coerce_like_equals() -> None:
    properties = {"quantity": "3", "gift": "true"}
    assert where_matches(where("{quantity: 3, gift: true}"), properties, NOW, PARIS) is True
    assert where_matches(where("{plan: free}"), {"plan": None}, NOW, PARIS) is False
    assert where_matches(where("{plan: free}"), {}, NOW, PARIS) is False


def test_a_missing_property_passes_exists_false_and_not_equals() -> None:
    filters = where("{coupon: {exists: false}, plan: {not_equals: free}}")
    assert where_matches(filters, {}, NOW, PARIS) is True
    assert where_matches(filters, {"coupon": "SPRING"}, NOW, PARIS) is False


def test_dotted_keys_address_nested_properties() -> None:
    properties = {"cart": {"total": Decimal("75.50"), "currency": "EUR"}, "items": [1, 2]}
    assert where_matches(where("{cart.total: {gte: 50}}"), properties, NOW, PARIS) is True
    assert where_matches(where("{cart.currency: EUR}"), properties, NOW, PARIS) is True
    assert where_matches(where("{cart.coupon: {exists: false}}"), properties, NOW, PARIS)
    assert where_matches(where("{cart.total.cents: {exists: true}}"), properties, NOW, PARIS) is (
        False
    )
    assert where_matches(where("{items.0: 1}"), properties, NOW, PARIS) is False  # no indexes


def test_a_literal_dotted_key_wins_over_the_nested_path() -> None:
    properties = {"utm.source": "ads", "utm": {"source": "mail"}}
    assert where_matches(where("{utm.source: ads}"), properties, NOW, PARIS) is True


# --- Conditions on the contact -------------------------------------------------------------


def test_attribute_conditions_read_the_contact() -> None:
    contact = ContactView.from_item(
        {"contact_id": "c-1", "attributes": {"plan": "free", "cart_items": Decimal("2")}}
    )
    given = replace(facts(), contact=contact)
    assert holds("{attribute: plan, equals: free}", given) is True
    assert holds("{attribute: plan, one_of: [pro, business]}", given) is False
    assert holds("{attribute: cart_items, gt: 0}", given) is True
    assert holds("{attribute: cart_items, gte: 2, lte: 2}", given) is True
    assert holds("{attribute: cart_items, gt: 2}", given) is False


def test_birthday_attribute_is_today() -> None:
    given = facts(attributes={"birthday": "1990-03-14"})
    assert holds("{attribute: birthday, is_today: true}", given) is True
    assert holds("{attribute: birthday, is_today: true}", replace(given, now=NOW + DAY)) is False


def test_tag_and_segment() -> None:
    given = facts(tags={"engaged": "2025-01-01T00:00:00Z"}, segments={"power-users": "2025-02-01"})
    assert holds("{tag: engaged}", given) is True
    assert holds("{tag: vip}", given) is False
    assert holds("{segment: power-users}", given) is True
    assert holds("{segment: repeat-browser}", given) is False


def test_reachable_uses_the_one_reachability_rule() -> None:
    given = facts(
        channels={
            "email": ChannelState(address="ada@example.com"),
            "sms": ChannelState(address="+33612345678", status=UNSUBSCRIBED),
            "push": ChannelState(address=None),
            "whatsapp": ChannelState(address="+33612345678", status=BOUNCED),
        }
    )
    assert holds("{reachable: email}", given) is True
    assert holds("{reachable: sms}", given) is False
    assert holds("{reachable: push}", given) is False  # no token
    assert holds("{reachable: whatsapp}", given) is False
    assert holds("{reachable: web_push}", given) is False  # never set up


# --- Event conditions ----------------------------------------------------------------------


def test_an_event_ever_performed() -> None:
    given = facts(events=[event("pricing_viewed", 400 * DAY)])
    assert holds("{event: pricing_viewed}", given) is True
    assert holds("{event: checkout_completed}", given) is False
    assert holds("{event: pricing_viewed}", facts()) is False


def test_within_counts_only_recent_events() -> None:
    given = facts(events=[event("pricing_viewed", 8 * DAY), event("pricing_viewed", 2 * DAY)])
    assert holds("{event: pricing_viewed, within: 7 days}", given) is True
    assert holds("{event: pricing_viewed, within: 7 days, at_least: 2}", given) is False
    assert holds("{event: pricing_viewed, within: 1 day}", given) is False
    assert holds("{event: pricing_viewed, at_least: 2}", given) is True


def test_within_starts_exactly_that_long_ago() -> None:
    at_edge = facts(events=[event("logged_in", 7 * DAY)])
    just_before = facts(events=[event("logged_in", 7 * DAY + timedelta(seconds=1))])
    assert holds("{event: logged_in, within: 7 days}", at_edge) is True
    assert holds("{event: logged_in, within: 7 days}", just_before) is False


def test_at_least_counts_events_matching_where() -> None:
    # GIVEN three pricing views this week, two of them on paid plans
    given = facts(
        events=[
            event("pricing_viewed", 1 * DAY, plan="pro"),
            event("pricing_viewed", 2 * DAY, plan="free"),
            event("pricing_viewed", 3 * DAY, plan="business"),
            event("page_viewed", 1 * HOUR, plan="pro"),
            event("pricing_viewed", 30 * DAY, plan="pro"),
        ]
    )
    condition = (
        "{event: pricing_viewed, within: 7 days, where: {plan: {one_of: [pro, business]}}, "
        "at_least: N}"
    )
    # THEN two match, not three
    assert holds(condition.replace("N", "2"), given) is True
    assert holds(condition.replace("N", "3"), given) is False


def test_event_where_with_bare_values_and_nested_properties() -> None:
    given = facts(events=[event("order_completed", HOUR, cart={"total": "64.90"}, currency="EUR")])
    assert holds("{event: order_completed, where: {currency: EUR, cart.total: {gte: 50}}}", given)
    assert not holds("{event: order_completed, where: {currency: USD}}", given)


def test_event_times_without_offset_are_utc() -> None:
    naive = EventRecord("logged_in", datetime(2025, 3, 14, 11, 30), {})
    given = facts(events=[naive], zone=TOKYO)
    assert holds("{event: logged_in, within: 1h}", given) is True


# --- Opened and clicked --------------------------------------------------------------------


def test_opened_looks_at_this_workflows_step() -> None:
    opened_here = facts(messages=[message("welcome-email", opened=True)])
    assert holds("{opened: welcome-email}", opened_here) is True
    assert holds("{opened: reminder-email}", opened_here) is False


def test_opened_ignores_other_workflows_and_unopened_messages() -> None:
    # GIVEN another workflow has a step with the same id, and its message was opened
    other = facts(messages=[message("welcome-email", workflow_id="onboarding", opened=True)])
    unopened = facts(messages=[message("welcome-email")])
    assert holds("{opened: welcome-email}", other) is False
    assert holds("{opened: welcome-email}", unopened) is False
    assert holds("{opened: welcome-email}", facts()) is False


def test_a_click_counts_as_an_open() -> None:
    # Images blocked: no open pixel, but the click proves the message was opened.
    given = facts(messages=[message("welcome-email", clicked=("https://x.io/start",))])
    assert holds("{opened: welcome-email}", given) is True


def test_any_of_several_sends_of_the_step_counts() -> None:
    given = facts(
        messages=[message("welcome-email"), message("welcome-email", opened=True, sent_ago=DAY)]
    )
    assert holds("{opened: welcome-email}", given) is True


def test_clicked_any_link_or_a_link_containing_text() -> None:
    given = facts(
        messages=[
            message("welcome-email", opened=True, clicked=("https://x.io/pricing?utm=mail",)),
            message("reminder-email", opened=True),
        ]
    )
    assert holds("{clicked: welcome-email}", given) is True
    assert holds("{clicked: welcome-email, link: /pricing}", given) is True
    assert holds("{clicked: welcome-email, link: /docs}", given) is False
    assert holds("{clicked: reminder-email}", given) is False  # opened, not clicked


def test_clicked_ignores_other_workflows() -> None:
    given = facts(
        messages=[message("welcome-email", workflow_id="newsletter", clicked=("https://x.io/",))]
    )
    assert holds("{clicked: welcome-email}", given) is False


def test_entered_at_ignores_messages_from_an_earlier_run() -> None:
    # GIVEN last week's run of this workflow sent and opened the same step
    last_week = message("welcome-email", opened=True, clicked=("https://x.io/",), sent_ago=7 * DAY)
    this_run = message("welcome-email", sent_ago=HOUR)
    given = facts(messages=[last_week, this_run], entered_at=NOW - DAY)
    # THEN only this run's message counts
    assert holds("{opened: welcome-email}", given) is False
    assert holds("{clicked: welcome-email}", given) is False
    # and without entered_at every message of the step counts
    assert holds("{opened: welcome-email}", replace(given, entered_at=None)) is True


# --- Started by ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("started_by", "key", "result"),
    [
        ("signed_up", "event:signed_up", True),  # a bare event name
        ("event:signed_up", "event:signed_up", True),  # or the trigger key
        ("signed_up", "event:signed_up_again", False),
        ("signed_up", "tag_added:signed_up", False),
        ("segment_entered:d-30", "segment_entered:d-30", True),
        ("segment_entered:d-30", "segment_entered:d-7", False),
        ("tag_added:vip", "tag_added:vip", True),
        ("vip", "tag_added:vip", False),
    ],
)
def test_started_by_matches_the_trigger_key(started_by: str, key: str, result: bool) -> None:
    given = facts(trigger={"key": key, "name": key.split(":")[-1], "properties": {}})
    assert holds(json.dumps({"started_by": started_by}), given) is result


def test_started_by_where_tests_the_starting_events_properties() -> None:
    given = facts(
        trigger={
            "key": "event:signed_up",
            "name": "signed_up",
            "properties": {"source": "ads", "utm": {"campaign": "spring"}},
            "occurred_at": "2025-03-14T11:00:00Z",
        }
    )
    assert holds("{started_by: signed_up, where: {source: {one_of: [ads, partner]}}}", given)
    assert holds("{started_by: signed_up, where: {source: ads, utm.campaign: spring}}", given)
    assert not holds("{started_by: signed_up, where: {source: organic}}", given)
    # the where never rescues a different trigger
    assert not holds("{started_by: tag_added:vip, where: {source: ads}}", given)


def test_started_by_where_without_properties() -> None:
    given = facts(trigger={"key": "segment_entered:d-30"})
    assert holds('{started_by: "segment_entered:d-30", where: {plan: pro}}', given) is False
    assert holds('{started_by: "segment_entered:d-30", where: {plan: {exists: false}}}', given)
    assert holds('{started_by: "segment_entered:d-30"}', facts(trigger={})) is False


# --- All, any, not -------------------------------------------------------------------------


def test_all_any_and_not() -> None:
    given = facts(tags={"engaged": "x"}, attributes={"score": 70})
    assert holds("{all: [{tag: engaged}, {attribute: score, gte: 50}]}", given) is True
    assert holds("{all: [{tag: engaged}, {attribute: score, gte: 80}]}", given) is False
    assert holds("{any: [{tag: vip}, {attribute: score, gte: 50}]}", given) is True
    assert holds("{any: [{tag: vip}, {attribute: score, gte: 80}]}", given) is False
    assert holds("{not: {tag: engaged}}", given) is False
    assert holds("{not: {not: {tag: engaged}}}", given) is True


DOCS_EXAMPLE = """
any:
  - all:
      - {attribute: score, gte: 50}
      - {event: pricing_viewed, within: 7 days, where: {plan: {one_of: [pro, business]}}, at_least: 2}
  - {clicked: welcome, link: /pricing}
  - {opened: welcome}
  - {tag: engaged}
  - {segment: power-users}
  - all:
      - {reachable: push}
      - not: {reachable: email}
  - {started_by: "segment_entered:d-30"}
  - {started_by: signed_up, where: {source: {one_of: [ads, partner]}}}
  - {attribute: birthday, is_today: true}
"""


def test_the_documented_nested_example() -> None:
    nobody = facts(trigger={"key": "event:signed_up", "properties": {"source": "organic"}})
    assert holds(DOCS_EXAMPLE, nobody) is False
    # each alternative alone makes it hold
    hot_lead = replace(
        nobody,
        contact=replace(nobody.contact, attributes={"score": 55}),
        events=[event("pricing_viewed", DAY, plan="pro"), event("pricing_viewed", DAY, plan="pro")],
    )
    push_only = replace(
        nobody, contact=replace(nobody.contact, channels={"push": ChannelState("token")})
    )
    from_ads = replace(nobody, trigger={"key": "event:signed_up", "properties": {"source": "ads"}})
    birthday = replace(nobody, contact=replace(nobody.contact, attributes={"birthday": "--03-14"}))
    clicked = replace(nobody, messages=[message("welcome", clicked=("https://x.io/pricing",))])
    for given in (hot_lead, push_only, from_ads, birthday, clicked):
        assert holds(DOCS_EXAMPLE, given) is True
    # half of an `all` is not enough
    score_only = replace(nobody, contact=replace(nobody.contact, attributes={"score": 55}))
    assert holds(DOCS_EXAMPLE, score_only) is False


# --- Choosing a branch ---------------------------------------------------------------------


def split_paths(*conditions: str) -> list[dict[str, Any]]:
    return [
        {"branch": str(index), "condition": emitted(text)}
        for index, text in enumerate(conditions, start=1)
    ]


def test_choose_branch_takes_the_first_path_that_holds() -> None:
    paths = split_paths(
        "{attribute: country, equals: FR}",
        "{attribute: country, one_of: [DE, AT]}",
        "{attribute: country, exists: true}",
    )
    assert choose_branch(paths, facts(attributes={"country": "FR"})) == "1"
    assert choose_branch(paths, facts(attributes={"country": "AT"})) == "2"
    assert choose_branch(paths, facts(attributes={"country": "US"})) == "3"
    assert choose_branch(paths, facts()) == DEFAULT_BRANCH == "default"


def test_choose_branch_with_no_paths_takes_the_default() -> None:
    assert choose_branch([], facts()) == "default"


def test_a_broken_condition_raises_instead_of_taking_the_default() -> None:
    with pytest.raises(ValidationError):
        choose_branch([{"branch": "yes", "condition": {"atribute": "plan"}}], facts())


def test_emitted_json_carries_durations_as_written() -> None:
    assert emitted("{event: logged_in, within: 7 days}") == {
        "event": "logged_in",
        "within": "7 days",
        "at_least": 1,
    }
    assert emitted("{not: {clicked: welcome, link: /pricing}}") == {
        "not": {"clicked": "welcome", "link": "/pricing"}
    }


def evaluate_payloads(machine: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The evaluate Lambda payloads of every `Check:` Task, parallel branches included."""
    found: list[dict[str, Any]] = []
    for state in machine["States"].values():
        parameters = state.get("Parameters") or {}
        if parameters.get("FunctionName") == "${EvaluateFunctionArn}":
            found.append(parameters["Payload"])
        for branch in state.get("Branches", []):
            found.extend(evaluate_payloads(branch))
    return found


def test_a_compiled_split_chooses_its_paths(tmp_path: Path) -> None:
    # GIVEN a split compiled by the real compiler
    result = compile_one(
        tmp_path,
        """
        id: demo
        name: Demo
        trigger: [{event: signed_up}, {tag_added: vip}]
        settings: {time_zone: Europe/Paris}
        steps:
          - {type: send_email, id: welcome, label: Welcome, template: hello}
          - {type: wait, label: Pause, for: 2 days}
          - type: split
            label: Which follow-up?
            paths:
              - label: Clicked pricing
                condition: {clicked: welcome, link: /pricing}
              - label: VIP
                condition: {started_by: "tag_added:vip"}
              - label: Browsed recently
                condition: {event: page_viewed, within: 3 days, where: {url: {contains: /docs}}}
          - type: end
        """,
    )
    assert result.ok, [d.format() for d in result.diagnostics]
    assert result.machine is not None
    [payload] = evaluate_payloads(result.machine)
    paths = payload["paths"]
    assert [p["branch"] for p in paths] == ["1", "2", "3"]
    given = replace(facts(), workflow_id=payload["workflow_id"])
    # WHEN the evaluate Lambda runs it on different contacts
    # THEN each takes the path the marketer meant
    pricing_click = message("welcome", workflow_id="demo", clicked=("https://x.io/pricing",))
    clicked = replace(given, messages=[pricing_click])
    vip = replace(given, trigger={"key": "tag_added:vip"})
    browsed = replace(given, events=[event("page_viewed", DAY, url="https://x.io/docs/start")])
    assert choose_branch(paths, clicked) == "1"
    assert choose_branch(paths, vip) == "2"
    assert choose_branch(paths, browsed) == "3"
    assert choose_branch(paths, given) == "default"
    assert event_names_needed(paths) == {"page_viewed"}
    assert needs_messages(paths) is True


def test_every_reference_workflow_condition_evaluates(library: dict[str, CompileResult]) -> None:
    seen = 0
    for result in library.values():
        assert result.machine is not None
        for payload in evaluate_payloads(result.machine):
            paths = payload["paths"]
            branches = {p["branch"] for p in paths} | {"default"}
            given = replace(facts(), workflow_id=payload["workflow_id"])
            assert choose_branch(paths, given) in branches
            assert all(isinstance(name, str) for name in event_names_needed(paths))
            assert isinstance(needs_messages(paths), bool)
            seen += 1
    assert seen > 0


# --- What to load --------------------------------------------------------------------------


def test_event_names_needed_walks_nested_conditions() -> None:
    paths = split_paths(
        "{any: [{event: logged_in, within: 7 days}, {not: {event: churned}}]}",
        "{all: [{tag: vip}, {any: [{event: logged_in}, {opened: welcome}]}]}",
        "{attribute: plan, equals: free}",
    )
    assert event_names_needed(paths) == {"logged_in", "churned"}
    assert needs_messages(paths) is True


def test_walk_yields_every_nested_condition_depth_first() -> None:
    condition = parse_condition(load("{any: [{tag: a}, {not: {all: [{tag: b}, {tag: c}]}}]}"))
    kinds = [type(c).__name__ for c in walk(condition)]
    assert kinds == [
        "AnyCondition",
        "TagCondition",
        "NotCondition",
        "AllCondition",
        "TagCondition",
        "TagCondition",
    ]


def test_nothing_to_load_for_contact_only_conditions() -> None:
    paths = split_paths("{tag: vip}", "{attribute: plan, equals: free}", "{reachable: email}")
    assert event_names_needed(paths) == set()
    assert needs_messages(paths) is False


@pytest.mark.parametrize(
    "text", ["{clicked: welcome}", "{not: {opened: welcome}}", "{all: [{tag: a}, {opened: w}]}"]
)
def test_needs_messages_for_opened_and_clicked(text: str) -> None:
    assert needs_messages(split_paths(text)) is True
