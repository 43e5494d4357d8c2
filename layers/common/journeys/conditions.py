"""Evaluate decision and split conditions on the facts about one contact (pure, no AWS).

The evaluate function loads the facts (the contact, its recent events, the messages this
workflow sent it) and asks `choose_branch` which path of a `decision` or `split` to take;
the paths arrive as the compiler emitted them (`emit.evaluated_choice`):
`[{"branch": "yes" | "1" | ..., "condition": <condition JSON>}]`. `event_names_needed` and
`needs_messages` tell it what to load first, so a `{tag: vip}` decision reads no events.

Values are compared leniently, because they come from DynamoDB (numbers as `Decimal`), CSV
imports (numbers and booleans as text) and apps (dates as ISO text):

- A value is *missing* when it is absent, `None` or the empty string. A missing value fails
  every operator except `exists: false` and `not_equals`.
- Numbers compare exactly as decimals, so `Decimal("19.99") == 19.99` and `"3" == 3`;
  text that reads as a finite number counts as a number. `gt`, `gte`, `lt` and `lte` need
  a number (a boolean is not one).
- `equals`, `not_equals` and `one_of` compare numerically when either side is a number and
  the other reads as one; as booleans when either side is a boolean (`true`/`false` in any
  case and `1`/`0` read as booleans); otherwise text equals text, case-sensitively.
- `contains` is a case-sensitive substring test on text, and a membership test on a list
  or set (an item equal to the text, as `equals` compares). `starts_with` needs text.
  `one_of` on a list value holds when any item is one of the options.
- Dates (`is_today`, `within_last`, `within_next`) are ISO 8601 text, `date` or `datetime`.
  A date without a time is local midnight in the contact's zone, and so is a date-time
  without an offset; a date-time with an offset is that instant. `is_today` compares the
  month and day with today's in the zone (an instant is first converted to the zone); a
  29 February falls on 28 February in other years; `--MM-DD` (a birthday without a year)
  is accepted by `is_today` only. Windows are inclusive: `within_last: 7 days` is
  `now - 7 days <= value <= now`.
- `where` keys may be dotted paths into nested properties: `cart.total` reads
  `properties["cart"]["total"]` unless `properties` has the literal key `"cart.total"`,
  which wins. Only mappings are walked (no list indexes).

Event and message times without an offset are taken as UTC (machine timestamps), unlike
dates in attributes and properties (people's dates, local to the contact).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter

from journeys.compiler.models import (
    AllCondition,
    AnyCondition,
    AttributeCondition,
    ClickedCondition,
    Comparison,
    Condition,
    EventCondition,
    NotCondition,
    OpenedCondition,
    ReachableCondition,
    Scalar,
    SegmentCondition,
    StartedByCondition,
    TagCondition,
    Where,
)
from journeys.contacts import ContactView, is_reachable

__all__ = [
    "DEFAULT_BRANCH",
    "EventRecord",
    "Facts",
    "MessageRecord",
    "choose_branch",
    "compare",
    "evaluate",
    "event_names_needed",
    "needs_messages",
    "parse_condition",
    "walk",
    "where_matches",
]

#: The branch `choose_branch` returns when no path's condition holds (the Choice default).
DEFAULT_BRANCH = "default"

_CONDITION: TypeAdapter[Any] = TypeAdapter(Condition)


# --- The facts a condition is evaluated on ----------------------------------------------


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One event the contact performed."""

    name: str
    occurred_at: datetime
    properties: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One message a workflow step sent the contact, with what the contact did with it."""

    workflow_id: str
    step_id: str
    channel: str
    sent_at: datetime
    opened_at: datetime | None
    clicked_links: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything a condition may look at, loaded once per evaluation.

    `now` should carry a time zone (a naive `now` is taken as UTC); `zone` is the contact's
    time zone (or the workflow's fallback) for `is_today` and dates without an offset.
    `trigger` is the event that started the journey (`key`, `properties`, ...).
    `entered_at`, when given, is when this execution started: `opened` and `clicked` then
    ignore messages sent before it (an earlier run of the same workflow).
    """

    contact: ContactView
    events: Sequence[EventRecord]
    messages: Sequence[MessageRecord]
    trigger: Mapping[str, Any]
    workflow_id: str
    now: datetime
    zone: ZoneInfo
    entered_at: datetime | None = None


# --- Values --------------------------------------------------------------------------------


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value == "")


def _number(value: Any) -> Decimal | None:
    """The value as an exact decimal, or None. Booleans are not numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))  # 19.99, not 19.989999999999998436805981327779591083
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
    else:
        return None
    return number if number.is_finite() else None


_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})


def _boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        return True if text in _TRUE else False if text in _FALSE else None
    number = _number(value)
    if number is not None and number in (0, 1):
        return number == 1
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _is_collection(value: Any) -> bool:
    return isinstance(value, list | tuple | set | frozenset)


def _equals(value: Any, expected: Any) -> bool:
    """`equals` on a present value (see the module notes for the coercions)."""
    if isinstance(value, bool) or isinstance(expected, bool):
        left, right = _boolean(value), _boolean(expected)
        return left is not None and left == right
    if _is_number(value) or _is_number(expected):
        a, b = _number(value), _number(expected)
        return a is not None and b is not None and a == b
    if isinstance(value, str) and isinstance(expected, str):
        return value == expected
    return False


def _order(value: Any, bound: float, test: str) -> bool:
    number, limit = _number(value), _number(bound)
    if number is None or limit is None:
        return False
    if test == "gt":
        return number > limit
    if test == "gte":
        return number >= limit
    if test == "lt":
        return number < limit
    return number <= limit


def _contains(value: Any, text: str) -> bool:
    if isinstance(value, str):
        return text in value
    if _is_collection(value):
        return any(not _is_missing(item) and _equals(item, text) for item in value)
    return False


def _one_of(value: Any, options: Sequence[Scalar]) -> bool:
    items = list(value) if _is_collection(value) else [value]
    return any(
        not _is_missing(item) and _equals(item, option) for item in items for option in options
    )


# --- Dates ---------------------------------------------------------------------------------

_MONTH_DAY = re.compile(r"^--(\d{2})-(\d{2})$")


def _utc(moment: datetime) -> datetime:
    """A machine timestamp: one without an offset is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _instant(value: Any, zone: ZoneInfo) -> datetime | None:
    """A person's date or date-time as an aware instant; dates and naive times are local."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def _month_day(value: Any, zone: ZoneInfo) -> tuple[int, int] | None:
    if isinstance(value, str) and (match := _MONTH_DAY.match(value.strip())):
        month, day = int(match.group(1)), int(match.group(2))
        try:
            date(2000, month, day)  # a leap year: 29 February is a real birthday
        except ValueError:
            return None
        return month, day
    moment = _instant(value, zone)
    if moment is None:
        return None
    local = moment.astimezone(zone)
    return local.month, local.day


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _is_today(value: Any, now: datetime, zone: ZoneInfo) -> bool | None:
    """Whether the value's month and day are today's in `zone`; None if it is no date."""
    month_day = _month_day(value, zone)
    if month_day is None:
        return None
    today = _utc(now).astimezone(zone).date()
    if month_day == (2, 29) and not _is_leap(today.year):
        month_day = (2, 28)
    return month_day == (today.month, today.day)


# --- Comparisons ---------------------------------------------------------------------------


def compare(comparison: Comparison, value: Any, now: datetime, zone: ZoneInfo) -> bool:
    """Whether `value` passes every operator of `comparison` (an `AttributeCondition` is one).

    A missing value (absent, None or "") passes only `exists: false` and `not_equals`.
    """
    missing = _is_missing(value)
    now = _utc(now)
    for name, expected in comparison.operators().items():
        if name == "exists":
            if bool(expected) == missing:
                return False
        elif name == "not_equals":
            if not missing and _equals(value, expected):
                return False
        elif missing or not _operator_holds(name, expected, value, now, zone):
            return False
    return True


def _operator_holds(name: str, expected: Any, value: Any, now: datetime, zone: ZoneInfo) -> bool:
    if name == "equals":
        return _equals(value, expected)
    if name in ("gt", "gte", "lt", "lte"):
        return _order(value, expected, name)
    if name == "contains":
        return _contains(value, expected)
    if name == "starts_with":
        return isinstance(value, str) and value.startswith(expected)
    if name == "one_of":
        return _one_of(value, expected)
    if name == "is_today":
        today = _is_today(value, now, zone)
        return today is not None and today == expected
    if name in ("within_last", "within_next"):
        moment = _instant(value, zone)
        if moment is None:
            return False
        span = timedelta(seconds=expected.seconds)
        if name == "within_last":
            return now - span <= moment <= now
        return now <= moment <= now + span
    raise ValueError(f"unknown comparison operator {name!r}")  # pragma: no cover


_ABSENT = object()


def _property(properties: Mapping[str, Any], key: str) -> Any:
    """A property by name, or by a dotted path into nested mappings; None if absent."""
    if key in properties:
        return properties[key]
    current: Any = properties
    for part in key.split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(part, _ABSENT)
        if current is _ABSENT:
            return None
    return current


def where_matches(
    where: Where | None, properties: Mapping[str, Any], now: datetime, zone: ZoneInfo
) -> bool:
    """Whether the properties pass every filter. A bare value means `equals`; keys may be
    dotted paths into nested properties (`cart.total`). No filters: always true."""
    for key, test in (where or {}).items():
        value = _property(properties, key)
        if isinstance(test, Comparison):
            if not compare(test, value, now, zone):
                return False
        elif _is_missing(value) or not _equals(value, test):
            return False
    return True


# --- Conditions ----------------------------------------------------------------------------


def evaluate(condition: Condition, facts: Facts) -> bool:
    """Whether the condition holds for the contact described by `facts`."""
    now, zone = _utc(facts.now), facts.zone
    if isinstance(condition, AttributeCondition):
        return compare(condition, facts.contact.attributes.get(condition.attribute), now, zone)
    if isinstance(condition, TagCondition):
        return condition.tag in facts.contact.tags
    if isinstance(condition, SegmentCondition):
        return condition.segment in facts.contact.segments
    if isinstance(condition, EventCondition):
        return _count_events(condition, facts, now) >= condition.at_least
    if isinstance(condition, OpenedCondition):
        # A click proves an open that blocked images (no tracking pixel) did not record.
        return any(
            message.opened_at is not None or bool(message.clicked_links)
            for message in _messages_of(facts, condition.opened)
        )
    if isinstance(condition, ClickedCondition):
        link = condition.link
        return any(
            link is None or link in url
            for message in _messages_of(facts, condition.clicked)
            for url in message.clicked_links
        )
    if isinstance(condition, ReachableCondition):
        return is_reachable(facts.contact, condition.reachable)
    if isinstance(condition, StartedByCondition):
        return _started_by(condition, facts, now)
    if isinstance(condition, AllCondition):
        return all(evaluate(inner, facts) for inner in condition.all)
    if isinstance(condition, AnyCondition):
        return any(evaluate(inner, facts) for inner in condition.any)
    if isinstance(condition, NotCondition):
        return not evaluate(condition.not_, facts)
    raise TypeError(f"not a condition: {condition!r}")


def _count_events(condition: EventCondition, facts: Facts, now: datetime) -> int:
    since = now - timedelta(seconds=condition.within.seconds) if condition.within else None
    count = 0
    for event in facts.events:
        if event.name != condition.event:
            continue
        if since is not None and _utc(event.occurred_at) < since:
            continue
        if where_matches(condition.where, event.properties, now, facts.zone):
            count += 1
            if count >= condition.at_least:
                break
    return count


def _messages_of(facts: Facts, step_id: str) -> Iterator[MessageRecord]:
    """Messages the step `step_id` of this workflow sent, in this run when it is known."""
    entered = _utc(facts.entered_at) if facts.entered_at is not None else None
    for message in facts.messages:
        if message.workflow_id != facts.workflow_id or message.step_id != step_id:
            continue
        if entered is not None and _utc(message.sent_at) < entered:
            continue
        yield message


def _started_by(condition: StartedByCondition, facts: Facts, now: datetime) -> bool:
    key = facts.trigger.get("key")
    if key not in (condition.started_by, f"event:{condition.started_by}"):
        return False
    properties = facts.trigger.get("properties")
    if not isinstance(properties, Mapping):
        properties = {}
    return where_matches(condition.where, properties, now, facts.zone)


# --- Paths ---------------------------------------------------------------------------------


def parse_condition(data: Any) -> Condition:
    """A condition from its JSON (as the compiler emits it) or YAML-like dict.

    Raises pydantic's ValidationError (a ValueError) when it is not one."""
    condition: Condition = _CONDITION.validate_python(data)
    return condition


def choose_branch(paths: Sequence[Mapping[str, Any]], facts: Facts) -> str:
    """The branch of the first path whose condition holds, else `"default"`.

    A path whose condition does not parse raises (the compiled machine is broken) rather
    than silently falling through to the default."""
    for path in paths:
        if evaluate(parse_condition(path["condition"]), facts):
            return str(path["branch"])
    return DEFAULT_BRANCH


def walk(condition: Condition) -> Iterator[Condition]:
    """The condition and every condition nested in it (`all`, `any`, `not`), depth first."""
    yield condition
    if isinstance(condition, AllCondition):
        inner: list[Condition] = condition.all
    elif isinstance(condition, AnyCondition):
        inner = condition.any
    elif isinstance(condition, NotCondition):
        inner = [condition.not_]
    else:
        return
    for child in inner:
        yield from walk(child)


def _conditions(paths: Sequence[Mapping[str, Any]]) -> Iterator[Condition]:
    for path in paths:
        yield from walk(parse_condition(path["condition"]))


def event_names_needed(paths: Sequence[Mapping[str, Any]]) -> set[str]:
    """The event names the paths' `event` conditions count (load only these events)."""
    return {c.event for c in _conditions(paths) if isinstance(c, EventCondition)}


def needs_messages(paths: Sequence[Mapping[str, Any]]) -> bool:
    """Whether any path asks about messages (`opened` or `clicked`)."""
    return any(isinstance(c, OpenedCondition | ClickedCondition) for c in _conditions(paths))
