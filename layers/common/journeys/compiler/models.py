"""The workflow language: pydantic models of a workflow file (the parse stage).

Unknown fields are rejected everywhere (`extra="forbid"`), so a misspelt field is an error
rather than a silently ignored setting. Descriptions here become the JSON Schema that
editors use to complete and check workflow files; `docs/workflow-language.md` explains each
kind with examples.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    PlainValidator,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from journeys.durations import DURATION_PATTERN, Duration, parse_duration

# --- Scalar types ------------------------------------------------------------------------


def _duration(value: Any) -> Duration:
    if isinstance(value, Duration):
        return value
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(
            f'expected a duration such as "2h" or "3 days", got {value!r} '
            "(a bare number has no unit)"
        )
    return parse_duration(value)


_DURATION_SCHEMA = WithJsonSchema(
    {
        "type": "string",
        "pattern": DURATION_PATTERN,
        "description": 'A duration: "90s", "30 min", "2h", "3 days", "2 weeks", "1 month".',
        "examples": ["2h", "3 days", "1 week"],
    }
)
_AS_TEXT = PlainSerializer(lambda d: d.text, return_type=str)

#: A length of time, possibly negative (offsets: "-10 days" is ten days before).
DurationField = Annotated[Duration, PlainValidator(_duration), _AS_TEXT, _DURATION_SCHEMA]


def _positive_duration(value: Any) -> Duration:
    duration = _duration(value)
    if duration.seconds <= 0:
        raise ValueError(f'must be longer than zero (got "{duration.text}")')
    return duration


#: A length of time that must be positive (waits, timeouts, windows, periods).
PositiveDurationField = Annotated[
    Duration, PlainValidator(_positive_duration), _AS_TEXT, _DURATION_SCHEMA
]


_TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _time_of_day(value: Any) -> str:
    text = str(value) if isinstance(value, str) else None
    if text is None and isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads 09:00 unquoted as a sexagesimal integer (540).
        text = f"{value // 60:02d}:{value % 60:02d}"
    if text is None or not _TIME_OF_DAY.match(text):
        raise ValueError(
            f'expected a time of day as "HH:MM" (24-hour), e.g. "09:00", got {value!r}'
        )
    return text


TimeOfDay = Annotated[
    str,
    PlainValidator(_time_of_day),
    WithJsonSchema({"type": "string", "pattern": _TIME_OF_DAY.pattern, "examples": ["09:00"]}),
]

StepId = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_-]{0,63}$",
        description="A short stable id for jumps and references: lowercase, digits, - and _.",
    ),
]
WorkflowId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,47}$")]
EventName = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z][A-Za-z0-9_.:-]{0,127}$",
        description="An event name as your app sends it, e.g. checkout_completed.",
    ),
]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_. -]{0,127}$")]
AttributeName = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$",
        description="A contact attribute, e.g. plan, first_name, cart_items.",
    ),
]
Label = Annotated[
    str,
    Field(
        min_length=1,
        description="What the marketer calls this step. It becomes the state name in the "
        "Step Functions console, so keep it short and unique in the workflow.",
    ),
]
#: What each identifier pattern means, for error messages (a regex teaches nobody).
PATTERN_HELP: dict[str, str] = {
    r"^[a-z][a-z0-9_-]{0,63}$": 'step ids are lowercase letters, digits, "-" and "_", '
    "starting with a letter (e.g. cart-push)",
    r"^[a-z][a-z0-9-]{0,47}$": 'workflow ids are lowercase letters, digits and "-", starting '
    "with a letter, and match the file name",
    r"^[A-Za-z][A-Za-z0-9_.:-]{0,127}$": "event names start with a letter, then letters, "
    "digits and _ . : - (e.g. checkout_completed)",
    r"^[A-Za-z0-9][A-Za-z0-9_. -]{0,127}$": "names are letters, digits, spaces and _ . -",
    r"^[A-Za-z_][A-Za-z0-9_]{0,63}$": "attribute names are letters, digits and _, not "
    "starting with a digit (e.g. first_name)",
    r"^https?://": "a URL starting with https:// (or http://)",
    r"^[a-z0-9][a-z0-9-]{0,63}$": 'segment ids are lowercase letters, digits and "-" '
    "(e.g. repeat-browser, d-30), and match the file name",
}

Scalar = str | int | float | bool

Channel = Literal["email", "sms", "push", "web_push", "in_app", "on_site", "whatsapp"]
CHANNELS: tuple[str, ...] = ("email", "sms", "push", "web_push", "in_app", "on_site", "whatsapp")


def _time_zone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        import difflib

        close = difflib.get_close_matches(value, sorted(available_timezones()), n=1)
        hint = f' Did you mean "{close[0]}"?' if close else ""
        raise ValueError(
            f'unknown time zone "{value}"; use an IANA name like Europe/Paris.{hint}'
        ) from None
    return value


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --- Comparisons and filters ------------------------------------------------------------

COMPARISON_OPERATORS: tuple[str, ...] = (
    "equals",
    "not_equals",
    "gt",
    "gte",
    "lt",
    "lte",
    "contains",
    "starts_with",
    "one_of",
    "exists",
    "is_today",
    "within_last",
    "within_next",
)


class Comparison(StrictModel):
    """One or more tests on a value; all must hold."""

    equals: Scalar | None = None
    not_equals: Scalar | None = None
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None
    contains: str | None = None
    starts_with: str | None = None
    one_of: list[Scalar] | None = None
    exists: bool | None = Field(None, description="true: the value is set; false: it is not.")
    is_today: bool | None = Field(
        None, description="A date whose month and day are today's (birthdays, anniversaries)."
    )
    within_last: PositiveDurationField | None = Field(
        None, description="A date at most this long ago."
    )
    within_next: PositiveDurationField | None = Field(
        None, description="A date at most this far ahead."
    )

    @model_validator(mode="after")
    def _needs_an_operator(self) -> Comparison:
        if not self.operators():
            raise ValueError(
                "a comparison needs at least one operator: " + ", ".join(COMPARISON_OPERATORS)
            )
        return self

    def operators(self) -> dict[str, Any]:
        return {
            name: getattr(self, name)
            for name in COMPARISON_OPERATORS
            if getattr(self, name) is not None
        }


#: Property filters: `{url: {contains: /pricing}, plan: pro}`; a bare value means equals.
Where = dict[str, Scalar | Comparison]


# --- Conditions (yes/no questions about a contact) -------------------------------------


class AttributeCondition(Comparison):
    """Compare a contact attribute: `{attribute: plan, equals: free}`."""

    attribute: AttributeName


class TagCondition(StrictModel):
    """The contact has a tag: `{tag: engaged}`."""

    tag: Name


class SegmentCondition(StrictModel):
    """The contact is in a segment: `{segment: repeat-browser}`."""

    segment: Name


class EventCondition(StrictModel):
    """The contact performed an event, optionally recently and with matching properties."""

    event: EventName
    within: PositiveDurationField | None = Field(None, description="Only count events this recent.")
    where: Where | None = None
    at_least: int = Field(1, ge=1, description="How many matching events are needed.")


class OpenedCondition(StrictModel):
    """The contact opened the message sent by a step of this workflow: `{opened: welcome}`."""

    opened: StepId


class ClickedCondition(StrictModel):
    """The contact clicked in the message sent by a step of this workflow."""

    clicked: StepId
    link: str | None = Field(None, description="Only this link (substring of the URL).")


class ReachableCondition(StrictModel):
    """The contact can receive messages on a channel: consent given, address valid, not
    bounced or unsubscribed (`{reachable: push}` means the contact has a push token)."""

    reachable: Channel


class StartedByCondition(StrictModel):
    """The journey was started by this trigger (for workflows with several triggers):
    an event name, or a trigger key such as `segment_entered:d-30` or `tag_added:vip`;
    `where` also tests the properties of the event that started it."""

    started_by: str
    where: Where | None = Field(None, description="Filters on the starting event's properties.")


class AllCondition(StrictModel):
    """Every condition holds."""

    all: list[Condition] = Field(min_length=1)


class AnyCondition(StrictModel):
    """At least one condition holds."""

    any: list[Condition] = Field(min_length=1)


class NotCondition(StrictModel):
    """The condition does not hold."""

    not_: Condition = Field(alias="not")


CONDITION_KEYS: dict[str, str] = {
    "attribute": "attribute",
    "tag": "tag",
    "segment": "segment",
    "event": "event",
    "opened": "opened",
    "clicked": "clicked",
    "reachable": "reachable",
    "started_by": "started_by",
    "all": "all",
    "any": "any",
    "not": "not",
}


def _key_discriminator(keys: dict[str, str]) -> Any:
    """Pick a union member by which of its defining keys the mapping has."""

    def pick(value: Any) -> str | None:
        if isinstance(value, dict):
            for key, tag in keys.items():
                if key in value:
                    return tag
            return None
        for key, tag in keys.items():
            if hasattr(value, key.rstrip("_")) or hasattr(value, key + "_"):
                return tag
        return None

    return pick


Condition = Annotated[
    Annotated[AttributeCondition, Tag("attribute")]
    | Annotated[TagCondition, Tag("tag")]
    | Annotated[SegmentCondition, Tag("segment")]
    | Annotated[EventCondition, Tag("event")]
    | Annotated[OpenedCondition, Tag("opened")]
    | Annotated[ClickedCondition, Tag("clicked")]
    | Annotated[ReachableCondition, Tag("reachable")]
    | Annotated[StartedByCondition, Tag("started_by")]
    | Annotated[AllCondition, Tag("all")]
    | Annotated[AnyCondition, Tag("any")]
    | Annotated[NotCondition, Tag("not")],
    Discriminator(
        _key_discriminator(CONDITION_KEYS),
        custom_error_type="condition_kind",
        custom_error_message="a condition needs one of the keys: " + ", ".join(CONDITION_KEYS),
    ),
]


# --- Triggers ----------------------------------------------------------------------------


class EventTrigger(StrictModel):
    """Enter when the contact performs an event (a form submit, a page visit, a purchase)."""

    event: EventName
    where: Where | None = Field(None, description="Property filters on the event.")

    def key(self) -> str:
        """How the router and `started_by` name this trigger."""
        return f"event:{self.event}"


class TagAddedTrigger(StrictModel):
    """Enter when a tag is added to the contact."""

    tag_added: Name

    def key(self) -> str:
        """How the router and `started_by` name this trigger."""
        return f"tag_added:{self.tag_added}"


class TagRemovedTrigger(StrictModel):
    """Enter when a tag is removed from the contact."""

    tag_removed: Name

    def key(self) -> str:
        """How the router and `started_by` name this trigger."""
        return f"tag_removed:{self.tag_removed}"


class SegmentEnteredTrigger(StrictModel):
    """Enter when the contact enters a segment."""

    segment_entered: Name

    def key(self) -> str:
        """How the router and `started_by` name this trigger."""
        return f"segment_entered:{self.segment_entered}"


class SegmentExitedTrigger(StrictModel):
    """Enter when the contact leaves a segment."""

    segment_exited: Name

    def key(self) -> str:
        """How the router and `started_by` name this trigger."""
        return f"segment_exited:{self.segment_exited}"


class AttributeChangedTrigger(StrictModel):
    """Enter when a contact attribute changes (optionally to a matching value)."""

    attribute_changed: AttributeName
    to: Comparison | None = Field(None, description="Only when the new value matches.")

    def key(self) -> str:
        """How the router and `started_by` name this trigger."""
        return f"attribute_changed:{self.attribute_changed}"


class DateTrigger(StrictModel):
    """Enter on a date kept in a contact attribute: a birthday, the anniversary of
    signing up, or N days before/after a due date (`offset: -10 days`)."""

    date: AttributeName
    recurs: Literal["yearly", "monthly", "once"] = Field(
        "yearly", description="yearly for birthdays and anniversaries; once for due dates."
    )
    offset: DurationField | None = Field(None, description="Negative = before the date.")
    at: TimeOfDay = Field("09:00", description="Time of day in the contact's time zone.")

    def key(self) -> str:
        """How the router and `started_by` name this trigger."""
        return f"date:{self.date}"


class ListTrigger(StrictModel):
    """Enter when the contact subscribes to or is added to a list (a CSV upload into the
    list counts: every row enters)."""

    list: Name

    def key(self) -> str:
        """How the router and `started_by` name this trigger."""
        return f"list:{self.list}"


class InactivityTrigger(StrictModel):
    """Enter when the contact has had no interaction for this long."""

    inactive_for: PositiveDurationField

    def key(self) -> str:
        """How the router and `started_by` name this trigger."""
        return f"inactive_for:{self.inactive_for.text}"


TRIGGER_KEYS: dict[str, str] = {
    "event": "event",
    "tag_added": "tag_added",
    "tag_removed": "tag_removed",
    "segment_entered": "segment_entered",
    "segment_exited": "segment_exited",
    "attribute_changed": "attribute_changed",
    "date": "date",
    "list": "list",
    "inactive_for": "inactive_for",
}

Trigger = Annotated[
    Annotated[EventTrigger, Tag("event")]
    | Annotated[TagAddedTrigger, Tag("tag_added")]
    | Annotated[TagRemovedTrigger, Tag("tag_removed")]
    | Annotated[SegmentEnteredTrigger, Tag("segment_entered")]
    | Annotated[SegmentExitedTrigger, Tag("segment_exited")]
    | Annotated[AttributeChangedTrigger, Tag("attribute_changed")]
    | Annotated[DateTrigger, Tag("date")]
    | Annotated[ListTrigger, Tag("list")]
    | Annotated[InactivityTrigger, Tag("inactive_for")],
    Discriminator(
        _key_discriminator(TRIGGER_KEYS),
        custom_error_type="trigger_kind",
        custom_error_message="a trigger needs one of the keys: " + ", ".join(TRIGGER_KEYS),
    ),
]


# --- Goal and exit criteria -------------------------------------------------------------


class Signal(StrictModel):
    """Something that happens to a contact: an event, a tag added, a segment entered."""

    label: Label
    event: EventName | None = None
    where: Where | None = None
    tag: Name | None = Field(None, description="Fires when this tag is added.")
    segment: Name | None = Field(None, description="Fires when the contact enters it.")

    @model_validator(mode="after")
    def _exactly_one_signal(self) -> Signal:
        given = [key for key in ("event", "tag", "segment") if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of event, tag or segment"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.where is not None and self.event is None:
            raise ValueError("where filters apply to events only")
        return self

    def key(self) -> str:
        """The router's lookup key for this signal, e.g. "event:checkout_completed"."""
        if self.event is not None:
            return f"event:{self.event}"
        if self.tag is not None:
            return f"tag:{self.tag}"
        return f"segment:{self.segment}"


class Goal(Signal):
    """The reason the workflow exists. Reaching it ends the journey at once, wherever the
    contact is, and counts as a conversion; `then` steps run after it (a thank-you,
    removing the new customer from an ad audience)."""

    then: list[Step] | None = Field(
        None, description="Steps to run once the goal is reached, e.g. a thank-you email."
    )


class ExitCriterion(Signal):
    """Leave the workflow at once when this happens (not counted as a conversion)."""


# --- Settings -----------------------------------------------------------------------------


class ReEntryAfter(StrictModel):
    """A contact may enter again once this long has passed since the last entry."""

    after: PositiveDurationField


class FrequencyCap(StrictModel):
    """At most `max` messages per contact per `per`, counting every workflow."""

    max: int = Field(ge=1)
    per: PositiveDurationField


class QuietHours(StrictModel):
    """No message goes out between `start` and `end` in the contact's time zone; sends are
    held until the quiet hours end."""

    start: TimeOfDay
    end: TimeOfDay


class Settings(StrictModel):
    re_entry: Literal["never", "always"] | ReEntryAfter = Field(
        "never", description='"never", "always", or {after: 30 days}.'
    )
    frequency_cap: FrequencyCap | None = None
    quiet_hours: QuietHours | None = None
    time_zone: str | None = Field(
        None, description="IANA time zone for contacts who have none, e.g. Europe/Paris."
    )
    stop_on_unsubscribe: bool = Field(
        True, description="End the journey when the contact unsubscribes from all mail."
    )

    _check_zone = field_validator("time_zone")(classmethod(lambda cls, v: _time_zone(v)))


# --- Steps --------------------------------------------------------------------------------

OnFailure = Literal["continue", "stop"]


class StepBase(StrictModel):
    id: StepId | None = None
    label: Label
    note: str | None = Field(None, description="Shown as the state's Comment in the console.")


class SendStep(StepBase):
    template: Name = Field(description="Message template in workflows/templates/ (no suffix).")
    to_attribute: AttributeName | None = Field(
        None, description="Send to the address in this attribute instead (e.g. parent_email)."
    )
    on_failure: OnFailure = Field(
        "continue", description="continue: a failed send does not end the journey."
    )


class SendEmail(SendStep):
    """Send an email (subject, HTML and text from the template)."""

    type: Literal["send_email"]


class SendSms(SendStep):
    """Send an SMS to the contact's phone (needs SMS consent)."""

    type: Literal["send_sms"]


class SendPush(SendStep):
    """Send a mobile push notification (needs a push token)."""

    type: Literal["send_push"]


class SendWebPush(SendStep):
    """Send a web push notification."""

    type: Literal["send_web_push"]


class SendInApp(SendStep):
    """Show an in-app message the next time the app asks for messages."""

    type: Literal["send_in_app"]


class SendOnSite(SendStep):
    """Show an on-site notification / web overlay the next time the contact visits."""

    type: Literal["send_on_site"]


class SendWhatsApp(SendStep):
    """Send a WhatsApp message (transactional templates only)."""

    type: Literal["send_whatsapp"]


class NotifyTeam(StepBase):
    """Alert a team member (the contact's owner or sales rep) by email."""

    type: Literal["notify_team"]
    template: Name
    to: str | None = Field(None, description="A fixed address, e.g. sales@example.com.")
    to_attribute: AttributeName | None = Field(
        None, description="The contact attribute holding the owner's address."
    )

    @model_validator(mode="after")
    def _one_recipient(self) -> NotifyTeam:
        if (self.to is None) == (self.to_attribute is None):
            raise ValueError("give exactly one of to (an address) or to_attribute")
        return self


class Webhook(StepBase):
    """Call an external HTTP endpoint with the contact and event."""

    type: Literal["webhook"]
    url: str = Field(pattern=r"^https?://")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    headers: dict[str, str] | None = None
    body: dict[str, Any] | None = Field(
        None, description="JSON body; strings may use {{ contact.x }} placeholders."
    )
    on_failure: OnFailure = "continue"

    @field_validator("headers", "body")
    @classmethod
    def _no_json_path_keys(cls, value: Any) -> Any:
        # They are copied into the state's Parameters, where Step Functions reads a key
        # ending in ".$" as a JSONPath to evaluate, not as data to send.
        def check(node: Any) -> None:
            if isinstance(node, dict):
                for key, item in node.items():
                    if str(key).endswith(".$"):
                        raise ValueError(
                            f'key "{key}" ends in ".$", which Step Functions reads as a '
                            "JSONPath; rename it (use {{ }} placeholders for contact data)"
                        )
                    check(item)
            elif isinstance(node, list):
                for item in node:
                    check(item)

        check(value)
        return value


class FetchData(Webhook):
    """Fetch data from an external system; later steps and templates use it as
    `data.<save_as>`."""

    type: Literal["fetch"]  # type: ignore[assignment]
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    save_as: AttributeName


class AddTag(StepBase):
    """Add a tag to the contact."""

    type: Literal["add_tag"]
    tag: Name


class RemoveTag(StepBase):
    """Remove a tag from the contact."""

    type: Literal["remove_tag"]
    tag: Name


class SetAttribute(StepBase):
    """Set a contact attribute to a value, or move a date attribute by a duration."""

    type: Literal["set_attribute"]
    attribute: AttributeName
    value: Scalar | None = None
    shift: DurationField | None = Field(
        None, description="Move a date attribute, e.g. 1 month for the next due date."
    )

    @model_validator(mode="after")
    def _value_or_shift(self) -> SetAttribute:
        if (self.value is None) == (self.shift is None):
            raise ValueError("give exactly one of value or shift")
        if self.shift is not None and self.shift.seconds == 0:
            raise ValueError("shift must not be zero")
        return self


class ChangeScore(StepBase):
    """Increase or decrease a lead / engagement score (`by: -10`)."""

    type: Literal["change_score"]
    by: int
    score: AttributeName = "score"

    @field_validator("by")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("by must not be 0")
        return value


class SetFunnelStage(StepBase):
    """Move the contact to a sales-funnel stage."""

    type: Literal["set_funnel_stage"]
    stage: Name


class AudienceStep(StepBase):
    audience: Name
    network: Literal["facebook", "google", "linkedin", "tiktok"]


class AddToAudience(AudienceStep):
    """Add the contact to an ad network's custom audience (retargeting)."""

    type: Literal["add_to_audience"]


class RemoveFromAudience(AudienceStep):
    """Remove the contact from an ad network's custom audience."""

    type: Literal["remove_from_audience"]


class StartWorkflow(StepBase):
    """Move the contact into another workflow (its re-entry rules apply). Follow with an
    `end` step to leave this one."""

    type: Literal["start_workflow"]
    workflow: WorkflowId


class Subscribe(StepBase):
    """Subscribe the contact to a list / campaign."""

    type: Literal["subscribe"]
    list: Name


class Unsubscribe(StepBase):
    """Unsubscribe the contact from a list / campaign."""

    type: Literal["unsubscribe"]
    list: Name


class Wait(StepBase):
    """Wait a fixed time."""

    type: Literal["wait"]
    duration: PositiveDurationField = Field(alias="for")


class WaitUntil(StepBase):
    """Wait until a fixed date, or until a date attribute plus an offset (J-10 before a
    due date: `attribute: due_date, offset: -10 days`)."""

    type: Literal["wait_until"]
    date: datetime | None = Field(None, description="A fixed date-time, ISO 8601 with offset.")
    attribute: AttributeName | None = Field(None, description="A date kept on the contact.")
    event_property: AttributeName | None = Field(
        None, description="A date in the event that started the journey, e.g. starts_at."
    )
    offset: DurationField | None = None
    at: TimeOfDay | None = Field(None, description="Time of day in the contact's zone.")
    time_zone: str | None = None

    _check_zone = field_validator("time_zone")(classmethod(lambda cls, v: _time_zone(v)))

    @model_validator(mode="after")
    def _one_date(self) -> WaitUntil:
        given = [k for k in ("date", "attribute", "event_property") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of date, attribute or event_property")
        if self.date is not None and self.date.tzinfo is None:
            raise ValueError('date needs a time zone offset, e.g. "2026-12-24T09:00:00+01:00"')
        if self.date is not None and (
            self.offset is not None or self.at is not None or self.time_zone is not None
        ):
            raise ValueError(
                "offset, at and time_zone apply to attribute and event_property dates; "
                "a fixed date already says when"
            )
        return self


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class WaitForWindow(StepBase):
    """Wait for a sending window (allowed days and hours) in the contact's time zone."""

    type: Literal["wait_for_window"]
    days: list[Weekday] = Field(
        default_factory=lambda: list(WEEKDAYS),
        min_length=1,
    )
    start: TimeOfDay = Field("09:00", description="Window opens (contact's local time).")
    end: TimeOfDay = Field("18:00", description="Window closes (contact's local time).")
    best_time: bool = Field(
        False,
        description="Prefer the contact's best engagement hour (attribute best_hour) "
        "inside the window.",
    )
    time_zone: str | None = None

    _check_zone = field_validator("time_zone")(classmethod(lambda cls, v: _time_zone(v)))


class WaitForEvent(StepBase):
    """Wait for the contact to perform an event, at most `timeout`. The `yes` path runs as
    soon as the event happens, the `no` path when the timeout passes; a missing path
    continues with the next step."""

    type: Literal["wait_for_event"]
    event: EventName
    where: Where | None = None
    timeout: PositiveDurationField
    yes: list[Step] | None = None
    no: list[Step] | None = None


class Decision(StepBase):
    """A yes/no question. A missing path continues with the next step."""

    type: Literal["decision"]
    condition: Condition
    yes: list[Step] | None = None
    no: list[Step] | None = None


class SplitPath(StrictModel):
    label: Label
    condition: Condition
    steps: list[Step] | None = None


class Split(StepBase):
    """Several paths: the first whose condition holds is taken, else `otherwise`."""

    type: Literal["split"]
    paths: list[SplitPath] = Field(min_length=1)
    otherwise: list[Step] | None = None
    otherwise_label: Label = "Otherwise"


class Variant(StrictModel):
    label: Label
    weight: int = Field(ge=1, le=100)
    steps: list[Step] | None = None


class Holdout(StrictModel):
    """A control group that receives nothing; with a goal it still counts conversions."""

    label: Label = "Holdout"
    weight: int = Field(ge=1, le=100)
    measure_for: PositiveDurationField | None = Field(
        None,
        description="Keep holdout contacts in the journey this long to see if they "
        "reach the goal anyway.",
    )


class AbSplit(StepBase):
    """A random split: each contact takes a variant with probability weight/100."""

    type: Literal["ab_split"]
    variants: list[Variant] = Field(min_length=1)
    holdout: Holdout | None = None

    @model_validator(mode="after")
    def _weights_total_100(self) -> AbSplit:
        total = sum(v.weight for v in self.variants) + (self.holdout.weight if self.holdout else 0)
        if total != 100:
            raise ValueError(
                f"variant and holdout weights must add up to 100 (they add up to {total})"
            )
        return self


class Goto(StrictModel):
    """Jump to the step with this id. Jumping back makes a loop: give `max_times` and put
    a wait inside it; after `max_times` jumps the journey continues after the goto."""

    type: Literal["goto"]
    step: StepId
    max_times: int | None = Field(None, ge=1)
    label: Label | None = Field(None, description="Needed only with max_times (loop counter).")
    id: StepId | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _counted_loops_have_a_label(self) -> Goto:
        if self.max_times and not self.label:
            raise ValueError("a goto with max_times becomes a state: give it a label")
        return self


class Repeat(StrictModel):
    """Start this journey again for the contact as a new execution (weekly reports,
    monthly reminders), optionally after a wait and at most `times` times in all."""

    type: Literal["repeat"]
    label: Label = "Repeat"
    after: PositiveDurationField | None = None
    times: int | None = Field(None, ge=2, description="Total runs, including the first.")
    id: StepId | None = None
    note: str | None = None


class End(StrictModel):
    """The journey ends here."""

    type: Literal["end"]
    label: Label = "End"
    id: StepId | None = None
    note: str | None = None


Step = Annotated[
    SendEmail
    | SendSms
    | SendPush
    | SendWebPush
    | SendInApp
    | SendOnSite
    | SendWhatsApp
    | NotifyTeam
    | Webhook
    | FetchData
    | AddTag
    | RemoveTag
    | SetAttribute
    | ChangeScore
    | SetFunnelStage
    | AddToAudience
    | RemoveFromAudience
    | StartWorkflow
    | Subscribe
    | Unsubscribe
    | Wait
    | WaitUntil
    | WaitForWindow
    | WaitForEvent
    | Decision
    | Split
    | AbSplit
    | Goto
    | Repeat
    | End,
    Field(discriminator="type"),
]

SEND_CHANNELS: dict[str, str] = {
    "send_email": "email",
    "send_sms": "sms",
    "send_push": "push",
    "send_web_push": "web_push",
    "send_in_app": "in_app",
    "send_on_site": "on_site",
    "send_whatsapp": "whatsapp",
}


class Workflow(StrictModel):
    """A journey: how contacts enter, what happens to them, and when they leave."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        json_schema_extra={"title": "Journeys workflow"},
    )

    id: WorkflowId = Field(description="Matches the file name; names the state machine.")
    name: str = Field(min_length=1, max_length=120)
    description: str | None = None
    trigger: Trigger | list[Trigger] = Field(
        description="How contacts enter: one trigger, or a list of which any one enters."
    )
    settings: Settings = Settings()
    goal: Goal | None = None
    exit: list[ExitCriterion] = Field(default_factory=list)
    steps: list[Step] = Field(min_length=1)

    @field_validator("trigger")
    @classmethod
    def _some_trigger(cls, value: Any) -> Any:
        if isinstance(value, list) and not value:
            raise ValueError("give at least one trigger")
        return value

    def triggers(self) -> list[Any]:
        return list(self.trigger) if isinstance(self.trigger, list) else [self.trigger]


STEP_TYPES: dict[str, type[BaseModel]] = {
    "send_email": SendEmail,
    "send_sms": SendSms,
    "send_push": SendPush,
    "send_web_push": SendWebPush,
    "send_in_app": SendInApp,
    "send_on_site": SendOnSite,
    "send_whatsapp": SendWhatsApp,
    "notify_team": NotifyTeam,
    "webhook": Webhook,
    "fetch": FetchData,
    "add_tag": AddTag,
    "remove_tag": RemoveTag,
    "set_attribute": SetAttribute,
    "change_score": ChangeScore,
    "set_funnel_stage": SetFunnelStage,
    "add_to_audience": AddToAudience,
    "remove_from_audience": RemoveFromAudience,
    "start_workflow": StartWorkflow,
    "subscribe": Subscribe,
    "unsubscribe": Unsubscribe,
    "wait": Wait,
    "wait_until": WaitUntil,
    "wait_for_window": WaitForWindow,
    "wait_for_event": WaitForEvent,
    "decision": Decision,
    "split": Split,
    "ab_split": AbSplit,
    "goto": Goto,
    "repeat": Repeat,
    "end": End,
}

# --- Segments (workflows/segments/<id>.yaml) ----------------------------------------------
#
# A segment is a rule over a contact's attributes and behaviour. The rule language reuses
# the conditions above where they mean the same thing for a contact whatever journey it is
# in, and adds what only segments need: inactivity and a drop in activity.

SegmentId = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9][a-z0-9-]{0,63}$",
        description="What workflows call the segment (segment_entered: d-30, {segment: d-30}).",
    ),
]


def _percent(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f'expected a percentage such as "50%", got {value!r}')
    text = str(value).strip().removesuffix("%").strip()
    try:
        number = int(text)
    except ValueError:
        raise ValueError(f'expected a percentage such as "50%", got {value!r}') from None
    if not 1 <= number <= 100:
        raise ValueError(f"must be between 1% and 100% (got {value!r})")
    return number


Percent = Annotated[
    int,
    PlainValidator(_percent),
    PlainSerializer(lambda number: f"{number}%", return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^\d{1,3}\s*%$", "examples": ["50%"]}),
]


class InactiveRule(StrictModel):
    """No interaction for at least this long: the contact's last event of any name (or,
    for a contact who never did anything, their creation) is this long ago."""

    inactive_for: PositiveDurationField


class ActivityDrop(StrictModel):
    """The contact performed the event in the last `period` at most (100 - by)% as often as
    in the period before it, which had at least one."""

    event: EventName
    period: PositiveDurationField = Field(
        description="The recent period; it is compared with the period of the same length "
        "just before it."
    )
    by: Percent = Field(
        description='How much the count fell at least, e.g. "50%" (100% = stopped entirely).'
    )
    where: Where | None = Field(None, description="Only count events with these properties.")


class ActivityDroppedRule(StrictModel):
    """An event became rarer: `{activity_dropped: {event: logged_in, period: 15 days, by: 50%}}`."""

    activity_dropped: ActivityDrop


class SegmentAll(StrictModel):
    """Every rule holds."""

    all: list[SegmentRule] = Field(min_length=1)


class SegmentAny(StrictModel):
    """At least one rule holds."""

    any: list[SegmentRule] = Field(min_length=1)


class SegmentNot(StrictModel):
    """The rule does not hold."""

    not_: SegmentRule = Field(alias="not")


#: Conditions that only mean something inside a journey, and what to write instead.
JOURNEY_ONLY_CONDITIONS: dict[str, str] = {
    "opened": '"opened" asks about a message the current journey sent, but a segment is not '
    "inside a journey; count the open events instead, e.g. "
    "{event: email_opened, within: 30 days}",
    "clicked": '"clicked" asks about a message the current journey sent, but a segment is not '
    "inside a journey; count the click events instead, e.g. "
    "{event: email_clicked, within: 30 days}",
    "started_by": '"started_by" asks which trigger started the current journey, but a segment '
    "is not inside a journey; test the event itself, e.g. {event: signed_up, within: 7 days}",
}


class JourneyOnlyCondition(StrictModel):
    """`opened`, `clicked` and `started_by` in a segment rule: always refused, with a hint."""

    model_config = ConfigDict(extra="allow", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _refuse(cls, value: Any) -> Any:
        for key, why in JOURNEY_ONLY_CONDITIONS.items():
            if isinstance(value, dict) and key in value:
                raise ValueError(why)
        return value


#: The keys a segment rule may start with (what the "rule_kind" error lists).
SEGMENT_RULE_KINDS: tuple[str, ...] = (
    "attribute",
    "tag",
    "segment",
    "event",
    "reachable",
    "inactive_for",
    "activity_dropped",
    "all",
    "any",
    "not",
)
SEGMENT_RULE_KEYS: dict[str, str] = {kind: kind for kind in SEGMENT_RULE_KINDS} | {
    key: "journey_only" for key in JOURNEY_ONLY_CONDITIONS
}

SegmentRule = Annotated[
    Annotated[AttributeCondition, Tag("attribute")]
    | Annotated[TagCondition, Tag("tag")]
    | Annotated[SegmentCondition, Tag("segment")]
    | Annotated[EventCondition, Tag("event")]
    | Annotated[ReachableCondition, Tag("reachable")]
    | Annotated[InactiveRule, Tag("inactive_for")]
    | Annotated[ActivityDroppedRule, Tag("activity_dropped")]
    | Annotated[SegmentAll, Tag("all")]
    | Annotated[SegmentAny, Tag("any")]
    | Annotated[SegmentNot, Tag("not")]
    | Annotated[JourneyOnlyCondition, Tag("journey_only")],
    Discriminator(
        _key_discriminator(SEGMENT_RULE_KEYS),
        custom_error_type="rule_kind",
        custom_error_message="a segment rule needs one of the keys: "
        + ", ".join(SEGMENT_RULE_KINDS),
    ),
]


class Segment(StrictModel):
    """Contacts who match a rule; Journeys keeps each contact's membership up to date."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        json_schema_extra={"title": "Journeys segment"},
    )

    id: SegmentId = Field(description="Matches the file name; what workflows call the segment.")
    description: str | None = Field(None, description="Who is in it, in words.")
    rule: SegmentRule = Field(description="Who is in the segment: one rule, or all/any/not.")


for _model in (
    AllCondition,
    AnyCondition,
    NotCondition,
    Goal,
    WaitForEvent,
    Decision,
    SplitPath,
    Split,
    Variant,
    AbSplit,
    Workflow,
    SegmentAll,
    SegmentAny,
    SegmentNot,
    Segment,
):
    _model.model_rebuild()
