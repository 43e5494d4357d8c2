"""The demo scenario of `journeys up`: synthetic contacts living through the reference
journeys while you watch, and simulated recipients reacting to the email they get.

LOCAL DEMO ONLY. Nothing here runs on AWS or touches real people: the cast is invented
(example.com addresses, phone numbers from the range Ofcom reserves for drama), and the
"recipients" are this module pretending to be mailboxes.

Why it exists: a dashboard of journeys is only convincing when contacts move through the
graphs. `demo/scenario.yaml` describes, as data, who arrives and what each one does
(`Scenario`); `plan` turns it into a deterministic cast for a seed (`Arrival`s); a
`DemoRunner` plays the plan against a running stack from one background thread:

- arrivals are paced in real seconds (a new contact every few seconds, whatever the
  stack's speed), so the terminal and the dashboard stay lively at any `--speed`;
- each contact's story (events and contact changes) is timed in journey time after its
  arrival (`journeys.clock`), because the journeys it plays against wait in journey time
  ("checked out within 2 h?");
- everything goes through the public API (`PUT /v1/contacts/{id}`, `POST /v1/events`),
  exactly as a web app would send it;
- the simulated recipients read the stack's outbox (`GET /local/outbox`) and, for email
  to a cast member, publish the SES event records SES itself would publish (Delivery,
  Open, Click, Bounce, Complaint, with the real SES message id) on the configuration
  set's SNS topic, so `journeys.feedback`, the statistics and the journeys react as on
  AWS; an unsubscribe is the RFC 8058 one-click POST a mailbox makes to the signed link
  in the email. Which recipient does what is decided by a random generator seeded per
  message, so a run is reproducible up to timing.

The runner never raises into the stack: a failed call is logged (the first few at
WARNING, then at DEBUG) and counted in `DemoRunner.tally()`. It prints one short line
per arrival through the `progress` callback it is given, nothing else.

Check a scenario file without a stack: ``python -m journeys.local.demo demo/scenario.yaml``.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import json
import logging
import random
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from journeys import clock
from journeys.compiler.diagnostics import Diagnostic, Severity, did_you_mean
from journeys.compiler.models import EventName, Name
from journeys.compiler.parse import explain_all
from journeys.compiler.source import SourceDocument, load_yaml
from journeys.contact_updates import ContactUpsert, check_time_zone
from journeys.durations import describe_seconds, parse_duration
from journeys.exceptions import InvalidScenario
from journeys.messaging import encode_tag_value

__all__ = [
    "DEFAULT_SCENARIO",
    "Arrival",
    "DemoRunner",
    "InvalidScenario",
    "Mailbox",
    "PlannedAction",
    "Recipients",
    "Scenario",
    "Story",
    "load_scenario",
    "main",
    "parse_scenario",
    "plan",
    "ses_record",
]

logger = logging.getLogger("journeys.local.demo")

#: Where `journeys up` finds the scenario, relative to the project.
DEFAULT_SCENARIO = Path("demo") / "scenario.yaml"
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_NOW_PLUS = re.compile(r"^now\s*\+\s*(.+)$")
_VALUES = ("contact_id", "first_name", "last_name", "email", "product", "number", "now")
_PLACEHOLDER_HELP = (
    "use {contact_id}, {first_name}, {last_name}, {email}, {product}, {number}, {now} or "
    '{now + 2 days}, in quotes: product_name: "{product}"'
)
_UNSUBSCRIBE_LINE = re.compile(r"^Unsubscribe[^:\n]*:\s*(\S+)\s*$", re.MULTILINE)
_LINK = re.compile(r"https?://[^\s<>\"')]+")
_UNSUBSCRIBE_PATH = "/v1/unsubscribe"
_WARNINGS_PER_KIND = 3  # then failures of that kind are logged at DEBUG only
_POLL_SECONDS = 0.5  # how often the recipients read the outbox (real time)
_REGION = "us-east-1"


# --- The scenario, as data ------------------------------------------------------------


def _journey_seconds(value: Any) -> Any:
    """ "40 min", "1 day 6h" (or 0) -> seconds of journey time."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value == 0:
            return 0.0
        raise ValueError(f'{value:g} needs a unit of journey time, e.g. "{value:g} min"')
    if isinstance(value, str):
        seconds = parse_duration(value).seconds
        if seconds < 0:
            raise ValueError(f"{value!r} is negative; write how long after, e.g. 30 min")
        return float(seconds)
    return value  # pydantic then says it must be a number or a duration


JourneySeconds = Annotated[
    float,
    BeforeValidator(_journey_seconds),
    Field(description='journey time, e.g. "40 min", "2 days 6h" (0: at once)'),
]
Probability = Annotated[float, Field(ge=0, le=1, description="a share from 0 to 1, e.g. 0.3")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _ordered(pair: tuple[float, float]) -> tuple[float, float]:
    if pair[0] > pair[1]:
        raise ValueError(f"write the shorter time first: [{pair[1]:g}, {pair[0]:g}]")
    return pair


class Cast(_Model):
    size: int = Field(40, ge=1, le=1000, description="contacts per cohort (1 to 1000)")
    id_prefix: str = Field(
        "demo-",
        pattern=r"^[a-z][a-z0-9-]{0,40}$",
        description="contact ids are this plus the arrival's number: demo-001",
    )
    seconds_between_arrivals: tuple[float, float] = Field(
        (2.0, 6.0),
        description="real seconds between two arrivals, [shortest, longest], e.g. [2, 6]",
    )
    cohorts: int = Field(
        1,
        ge=0,
        le=100,
        description="casts that arrive one after the other (0: until the stack stops)",
    )

    @field_validator("seconds_between_arrivals")
    @classmethod
    def _positive(cls, value: tuple[float, float]) -> tuple[float, float]:
        if value[0] < 0:
            raise ValueError("must not be negative, e.g. [2, 6]")
        return _ordered(value)


class People(_Model):
    first_names: list[str] = Field(min_length=1)
    last_names: list[str] = Field(min_length=1)
    time_zones: list[str] = Field(
        ["Europe/London"], min_length=1, description="IANA names, e.g. Europe/London"
    )
    email_domain: str = Field("example.com", pattern=r"^[a-z0-9.-]+\.[a-z]{2,}$")
    phone_prefix: str = Field(
        "+447700900",
        pattern=r"^\+[1-9]\d{3,11}$",
        description='E.164 digits before the last three, e.g. "+447700900" (quoted)',
    )

    @field_validator("time_zones")
    @classmethod
    def _zones(cls, value: list[str]) -> list[str]:
        for zone in value:
            check_time_zone(zone)
        return value


class ContactShape(_Model):
    """What a story's contacts have besides name, email and phone."""

    channels: list[Literal["email", "sms", "push"]] = Field(
        ["email"], description="channels the contact can be reached on: email, sms, push"
    )
    attributes: dict[str, Any] = Field(default_factory=dict)
    lists: list[Name] = Field(default_factory=list, description="lists joined on arrival")
    tags: list[Name] = Field(default_factory=list)


class Step(_Model):
    """One thing the contact does, `after` its arrival in journey time."""

    after: JourneySeconds = 0.0
    event: EventName | None = Field(None, description="an event name, e.g. checkout_completed")
    properties: dict[str, Any] = Field(default_factory=dict)
    update: dict[str, Any] | None = Field(
        None, description="a contact change as PUT /v1/contacts/{id} takes it"
    )
    chance: Probability = 1.0

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        if (self.event is None) == (self.update is None):
            raise ValueError('give either "event" or "update" (a contact change), not both')
        if self.update is not None:
            if self.properties:
                raise ValueError('"properties" belong to an event; put the change in "update"')
            _check_update(self.update)
        _check_placeholders(self.properties if self.event else self.update)
        return self


class Story(_Model):
    id: str = Field(pattern=r"^[a-z][a-z0-9-]{0,40}$", description="e.g. cart-abandoner")
    weight: float = Field(gt=0, description="how often, relative to the other stories")
    says: str = Field(
        min_length=1, max_length=80, description="the terminal line: what the contact does"
    )
    contact: ContactShape = Field(default_factory=ContactShape)
    timeline: list[Step] = Field(default_factory=list)


class Mailbox(_Model):
    """How one kind of recipient treats email (each contact has one for the whole demo)."""

    kind: str = Field(min_length=1)
    share: float = Field(gt=0, description="how common, relative to the other mailboxes")
    open: Probability
    click: Probability = 0.0  # of opened email
    unsubscribe: Probability = 0.0  # of opened email


class Recipients(_Model):
    """Simulated recipients: the SES events the cast's email leads to."""

    simulate: bool = True
    bounce: Probability = 0.03
    complaint: Probability = 0.01
    delivered_after: tuple[JourneySeconds, JourneySeconds] = (60.0, 600.0)
    opened_after: tuple[JourneySeconds, JourneySeconds] = (600.0, 6 * 3600.0)
    clicked_after: tuple[JourneySeconds, JourneySeconds] = (60.0, 1200.0)
    unsubscribed_after: tuple[JourneySeconds, JourneySeconds] = (60.0, 600.0)
    mailboxes: list[Mailbox] = Field(
        default_factory=lambda: [Mailbox(kind="casual", share=1, open=0.4, click=0.15)],
        min_length=1,
    )

    _ranges = field_validator(
        "delivered_after", "opened_after", "clicked_after", "unsubscribed_after"
    )(classmethod(lambda cls, value: _ordered(value)))


class Scenario(_Model):
    """`demo/scenario.yaml`: who arrives, what each does, how recipients react."""

    seed: int = Field(1, description="the same seed plays the same cast and choices")
    cast: Cast = Field(default_factory=Cast)
    people: People
    catalog: list[str] = Field(
        ["Trail running shoes"], min_length=1, description="products for {product}"
    )
    stories: list[Story] = Field(min_length=1)
    recipients: Recipients = Field(default_factory=Recipients)

    @field_validator("stories")
    @classmethod
    def _unique(cls, value: list[Story]) -> list[Story]:
        seen = Counter(story.id for story in value)
        twice = sorted(name for name, count in seen.items() if count > 1)
        if twice:
            raise ValueError(f"story ids must be unique: {', '.join(twice)} repeats")
        return value


def _check_update(update: Mapping[str, Any]) -> None:
    """The change must be one `PUT /v1/contacts/{id}` accepts, or the API would refuse it
    in the middle of the demo."""
    try:
        ContactUpsert.model_validate(update)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        if problem["type"] == "extra_forbidden" and len(problem["loc"]) == 1:
            allowed = sorted(ContactUpsert.model_fields)
            raise ValueError(
                f'unknown field "{where}" in update.'
                + did_you_mean(where, allowed)
                + f" (fields: {', '.join(allowed)})"
            ) from None
        raise ValueError(f"update.{where}: {problem['msg']}") from None


def _walk_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if item is None and isinstance(key, str) and key in _VALUES:
                # `product_name: {product}` unquoted is a YAML mapping, not a placeholder.
                raise ValueError(f'write "{{{key}}}" in quotes; YAML reads {{{key}}} as a mapping')
            yield from _walk_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk_strings(item)


def _check_placeholders(value: Any) -> None:
    for text in _walk_strings(value):
        for match in _PLACEHOLDER.finditer(text):
            name = match.group(1).strip()
            plus = _NOW_PLUS.match(name)
            if plus:
                try:
                    parse_duration(plus.group(1))
                except ValueError as error:
                    raise ValueError(f"in {match.group(0)}: {error}") from None
            elif name not in _VALUES:
                raise ValueError(
                    f"unknown placeholder {match.group(0)}."
                    + did_you_mean(name, _VALUES).replace('"', "")
                    + f" ({_PLACEHOLDER_HELP})"
                )


# --- Loading, with errors that say where and how to fix them ---------------------------


def parse_scenario(text: str, file: str = str(DEFAULT_SCENARIO)) -> Scenario:
    """The scenario in `text`; `InvalidScenario` lists every problem (file:line:column)."""
    document = load_yaml(text, file)
    problems = [
        Diagnostic(Severity.ERROR, file, pos.line, pos.column, message, hint)
        for pos, message, hint in document.problems
    ]
    if not problems and not isinstance(document.data, dict):
        problems.append(
            Diagnostic(
                Severity.ERROR,
                file,
                1,
                1,
                "a scenario file is a mapping with seed, cast, people, stories and recipients",
                f"start from the example in {DEFAULT_SCENARIO}",
            )
        )
    if problems:
        raise InvalidScenario(problems)
    try:
        return Scenario.model_validate(document.data)
    except ValidationError as error:
        raise InvalidScenario(_explained(document, error)) from None


def _explained(document: SourceDocument, error: ValidationError) -> list[Diagnostic]:
    # The compiler's teaching of pydantic errors (did-you-mean, allowed fields, lines)
    # works for any model; step labels mean nothing here.
    return [
        Diagnostic(d.severity, d.file, d.line, d.column, d.message, d.hint, code=d.code)
        for d in explain_all(document, error, Scenario)
    ]


def load_scenario(path: Path) -> Scenario:
    """Read and check a scenario file (`InvalidScenario` says what is wrong, where)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InvalidScenario(
            [
                Diagnostic(
                    Severity.ERROR,
                    str(path),
                    1,
                    1,
                    f"cannot read the scenario: {error.strerror or error}",
                    f"give a readable file; the example is {DEFAULT_SCENARIO}",
                )
            ]
        ) from None
    return parse_scenario(text, str(path))


# --- The plan: a deterministic cast for a seed -----------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedAction:
    """One timeline step of one contact; placeholders are filled when it is sent."""

    index: int  # position in the story's timeline (event ids derive from it)
    after: float  # journey seconds after the arrival
    event: str | None
    properties: Mapping[str, Any]
    update: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class Arrival:
    number: int  # 1, 2, ... across cohorts
    contact_id: str
    at: float  # real seconds after the cohort began
    story: str
    says: str
    name: str
    mailbox: str
    contact: Mapping[str, Any]  # the PUT /v1/contacts body
    values: Mapping[str, str]  # placeholder values (all but {now})
    actions: tuple[PlannedAction, ...]


def _weighted(rng: random.Random, items: Sequence[Any], weights: Sequence[float]) -> Any:
    return rng.choices(items, weights=weights, k=1)[0]


def plan(scenario: Scenario, cohort: int = 0) -> list[Arrival]:
    """The arrivals of one cohort, in order; the same scenario and cohort give the same
    cast, stories, times and chances every time."""
    rng = random.Random(f"{scenario.seed}/{cohort}")
    cast, people = scenario.cast, scenario.people
    stories = scenario.stories
    mailboxes = scenario.recipients.mailboxes
    width = max(3, len(str(cast.size * max(cast.cohorts, cohort + 1))))
    arrivals: list[Arrival] = []
    at = 0.0
    for offset in range(cast.size):
        number = cohort * cast.size + offset + 1
        if offset:
            at += rng.uniform(*cast.seconds_between_arrivals)
        story = _weighted(rng, stories, [s.weight for s in stories])
        first, last = rng.choice(people.first_names), rng.choice(people.last_names)
        contact_id = f"{cast.id_prefix}{number:0{width}d}"
        email = f"{first}.{last}.{number}@{people.email_domain}".lower()
        values = {
            "contact_id": contact_id,
            "first_name": first,
            "last_name": last,
            "email": email,
            "product": rng.choice(scenario.catalog),
            "number": str(number),
        }
        addresses = {
            "email": email,
            "sms": f"{people.phone_prefix}{number % 1000:03d}",
            "push": f"{contact_id}-device-token",
        }
        shape = story.contact
        body: dict[str, Any] = {
            "attributes": {"first_name": first, "last_name": last, **shape.attributes},
            "channels": {
                channel: {"address": addresses[channel], "status": "subscribed"}
                for channel in shape.channels
            },
            "time_zone": rng.choice(people.time_zones),
        }
        if shape.lists:
            body["lists"] = {"subscribe": list(shape.lists)}
        if shape.tags:
            body["tags"] = {"add": list(shape.tags)}
        actions = tuple(
            PlannedAction(index, step.after, step.event, step.properties, step.update)
            for index, step in enumerate(story.timeline)
            if rng.random() < step.chance
        )
        arrivals.append(
            Arrival(
                number=number,
                contact_id=contact_id,
                at=at,
                story=story.id,
                says=story.says,
                name=f"{first} {last}",
                mailbox=_weighted(rng, mailboxes, [m.share for m in mailboxes]).kind,
                contact=body,
                values=values,
                actions=actions,
            )
        )
    return arrivals


def fill(value: Any, values: Mapping[str, str], now: datetime) -> Any:
    """`value` with its placeholders filled ({now + 2 days}: journey time, ISO 8601)."""
    if isinstance(value, str):

        def one(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            plus = _NOW_PLUS.match(name)
            if plus:
                return _iso(now + timedelta(seconds=parse_duration(plus.group(1)).seconds))
            if name == "now":
                return _iso(now)
            return values.get(name, match.group(0))

        return _PLACEHOLDER.sub(one, value)
    if isinstance(value, Mapping):
        return {key: fill(item, values, now) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, values, now) for item in value]
    return value


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# --- What SES would publish --------------------------------------------------------------


def _ses_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )


def ses_record(
    kind: Literal["Delivery", "Open", "Click", "Bounce", "Complaint"],
    email: Mapping[str, Any],
    at: datetime,
    *,
    link: str = "",
    source: str = "",
    configuration_set: str = "",
) -> dict[str, Any]:
    """The SES event record (event publishing to SNS) for `email`, an outbox entry.

    The shape follows https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-
    sns-contents.html, with the real SES message id and the message tags the send function
    set (`journeys.messaging.message_tags`), so the feedback function finds the contact,
    the message record and the step."""
    sent = _parse_time(str(email["at"]))
    recipient = str(email["to"])
    tags: dict[str, list[str]] = {
        "ses:operation": ["SendEmail"],
        "ses:source-ip": ["192.0.2.10"],
        "ses:caller-identity": ["journeys-send"],
        "contact_id": [encode_tag_value(str(email["contact_id"]))],
        "workflow_id": [str(email["workflow_id"])],
        "step_id": [str(email["step_id"])],
    }
    if configuration_set:
        tags["ses:configuration-set"] = [configuration_set]
    if source:
        tags["ses:from-domain"] = [source.rsplit("@", 1)[-1]]
    mail: dict[str, Any] = {
        "timestamp": _ses_time(sent),
        "messageId": str(email["message_id"]),
        "sendingAccountId": "123456789012",
        "destination": [recipient],
        "headersTruncated": False,
        "tags": tags,
    }
    if source:
        mail["source"] = source
        mail["sourceArn"] = f"arn:aws:ses:{_REGION}:123456789012:identity/{source}"
    if email.get("subject"):
        mail["commonHeaders"] = {
            "from": [source] if source else [],
            "to": [recipient],
            "messageId": str(email["message_id"]),
            "subject": str(email["subject"]),
        }
    feedback_id = f"{email['message_id']}-{kind.lower()}-000000"
    record: dict[str, Any] = {"eventType": kind, "mail": mail}
    when = _ses_time(at)
    if kind == "Delivery":
        record["delivery"] = {
            "timestamp": when,
            "processingTimeMillis": max(0, int((at - sent).total_seconds() * 1000)),
            "recipients": [recipient],
            "smtpResponse": "250 2.6.0 Message received",
            "reportingMTA": "a8-60.smtp-out.amazonses.com",
        }
    elif kind == "Open":
        record["open"] = {"timestamp": when, "userAgent": "Mail/3774", "ipAddress": "192.0.2.1"}
    elif kind == "Click":
        record["click"] = {
            "timestamp": when,
            "link": link,
            "linkTags": {},
            "userAgent": "Mail/3774",
            "ipAddress": "192.0.2.1",
        }
    elif kind == "Bounce":
        record["bounce"] = {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": recipient,
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
            ],
            "timestamp": when,
            "feedbackId": feedback_id,
            "reportingMTA": "dsn; a8-60.smtp-out.amazonses.com",
        }
    else:
        record["complaint"] = {
            "complainedRecipients": [{"emailAddress": recipient}],
            "timestamp": when,
            "feedbackId": feedback_id,
            "userAgent": "Mail-Feedback/2.0",
            "complaintFeedbackType": "abuse",
            "arrivalDate": when,
        }
    return record


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- Playing the scenario against a running stack ------------------------------------


class StackAddresses(Protocol):
    """What the runner needs of a stack: `journeys.local.stack.LocalStack` has it."""

    api_url: str
    api_key: str
    endpoint: str


@dataclass(order=True)
class _Task:
    due: datetime
    order: int
    what: str = field(compare=False)
    run: Callable[[], None] = field(compare=False)


class DemoRunner:
    """Plays a `Scenario` against a running stack from one daemon thread.

    `start()` returns at once; `stop()` ends the thread (and never raises). The stack's
    clock must be installed in this process (`journeys up` and the e2e stack do)."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        api_url: str,
        api_key: str,
        aws_endpoint: str,
        progress: Callable[[str], None] | None = None,
        sns: Any = None,
        ses: Any = None,
        timeout: float = 30.0,
    ) -> None:
        self.scenario = scenario
        self.api_url = api_url.rstrip("/")
        self.api_key = api_key
        self.aws_endpoint = aws_endpoint
        self.progress = progress or (lambda line: None)
        self.timeout = timeout
        self._sns, self._ses = sns, ses
        self._topic: str | None = None
        self._sender: str | None = None
        self._configuration_set = ""
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._warned: Counter[str] = Counter()
        self._tasks: list[_Task] = []
        self._order = itertools.count()
        self._cast: dict[str, Arrival] = {}
        self._mailboxes = {m.kind: m for m in scenario.recipients.mailboxes}
        self._seen = 0  # the last outbox sequence read
        self._sent_by_step: Counter[tuple[str, str, str]] = Counter()

    @classmethod
    def for_stack(
        cls,
        scenario: Scenario,
        stack: StackAddresses,
        progress: Callable[[str], None] | None = None,
    ) -> DemoRunner:
        return cls(
            scenario,
            api_url=stack.api_url,
            api_key=stack.api_key,
            aws_endpoint=stack.endpoint,
            progress=progress,
        )

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> DemoRunner:
        if self._thread is None:
            self._thread = threading.Thread(target=self._main, name="journeys-demo", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        logger.info("demo scenario stopped: %s", dict(self.tally()))

    def describe(self) -> str:
        """One line for the banner: what the demo is about to do."""
        cast = self.scenario.cast
        low, high = cast.seconds_between_arrivals
        minutes = max(1, round(cast.size * (low + high) / 2 / 60))
        arrive = f"{cast.size} synthetic contacts arrive over about {minutes} min"
        if cast.cohorts == 0:
            arrive += ", again and again until you stop"
        elif cast.cohorts > 1:
            arrive += f", {cast.cohorts} times"
        if self.scenario.recipients.simulate:
            arrive += "; simulated recipients open, click, bounce and unsubscribe"
        return arrive

    def tally(self) -> dict[str, int]:
        """What the demo did so far: arrivals, events, updates, delivered, opened, clicked,
        bounced, complained, unsubscribed, failed."""
        with self._lock:
            return dict(self._counts)

    @property
    def cast(self) -> dict[str, Arrival]:
        """The contacts that arrived so far, by id."""
        with self._lock:
            return dict(self._cast)

    # --- the loop ------------------------------------------------------------------------

    def _main(self) -> None:
        try:
            self._play()
        except Exception:  # never into the stack: the demo just ends
            logger.exception("the demo scenario stopped after an unexpected error")

    def _play(self) -> None:
        cast = self.scenario.cast
        cohort = 0
        began = time.monotonic()
        arrivals = plan(self.scenario, cohort)
        next_poll = 0.0
        while not self._stopping.is_set():
            now_real = time.monotonic()
            while arrivals and began + arrivals[0].at <= now_real:
                self._arrive(arrivals.pop(0))
                if self._stopping.is_set():
                    return
            if not arrivals and (cast.cohorts == 0 or cohort + 1 < cast.cohorts):
                cohort += 1
                began = time.monotonic() + random.Random(
                    f"{self.scenario.seed}/gap/{cohort}"
                ).uniform(*cast.seconds_between_arrivals)
                arrivals = plan(self.scenario, cohort)
            self._run_due()
            if self.scenario.recipients.simulate and now_real >= next_poll:
                self._read_outbox()
                next_poll = time.monotonic() + _POLL_SECONDS
            self._stopping.wait(self._sleep(began, arrivals, next_poll))

    def _sleep(self, began: float, arrivals: list[Arrival], next_poll: float) -> float:
        now_real = time.monotonic()
        waits = [0.5]
        if arrivals:
            waits.append(began + arrivals[0].at - now_real)
        if self._tasks:
            ahead = (self._tasks[0].due - clock.now()).total_seconds()
            waits.append(clock.current().real_seconds(max(ahead, 0.0)))
        if self.scenario.recipients.simulate:
            waits.append(next_poll - now_real)
        return max(0.01, min(waits))

    def _schedule(self, due: datetime, what: str, run: Callable[[], None]) -> None:
        heapq.heappush(self._tasks, _Task(due, next(self._order), what, run))

    def _run_due(self) -> None:
        now = clock.now()
        while self._tasks and self._tasks[0].due <= now and not self._stopping.is_set():
            task = heapq.heappop(self._tasks)
            try:
                task.run()
            except Exception as error:
                self._failed(task.what, error)

    # --- the cast ------------------------------------------------------------------------

    def _arrive(self, arrival: Arrival) -> None:
        now = clock.now()
        contact_path = f"/v1/contacts/{urllib.parse.quote(arrival.contact_id, safe='')}"
        try:
            self._api("PUT", contact_path, dict(arrival.contact))
        except Exception as error:
            self._failed("contact", error)
            return
        with self._lock:
            self._cast[arrival.contact_id] = arrival
            self._counts["arrivals"] += 1
        logger.info("demo: %s arrives (%s)", arrival.contact_id, arrival.story)
        self.progress(
            f"[{_iso(now)[:16].replace('T', ' ')}] {'demo':<7} {arrival.contact_id} "
            f"{arrival.name} {arrival.says}"
        )
        for action in arrival.actions:
            self._schedule(
                now + timedelta(seconds=action.after),
                action.event or "update",
                functools.partial(self._act, arrival, action),
            )

    def _act(self, arrival: Arrival, action: PlannedAction) -> None:
        now = clock.now()
        if action.event is not None:
            event_id = f"{arrival.contact_id}-{action.index + 1}-{action.event}"[:128]
            body = {
                "event_id": event_id,
                "contact_id": arrival.contact_id,
                "name": action.event,
                "properties": fill(dict(action.properties), arrival.values, now),
            }
            self._api("POST", "/v1/events", body)
            self._count("events")
            logger.info("demo: %s %s", arrival.contact_id, action.event)
        else:
            change = fill(dict(action.update or {}), arrival.values, now)
            path = f"/v1/contacts/{urllib.parse.quote(arrival.contact_id, safe='')}"
            self._api("PUT", path, change)
            self._count("updates")
            logger.info("demo: %s updated %s", arrival.contact_id, sorted(change))

    # --- simulated recipients (local demo only) ------------------------------------------

    def _read_outbox(self) -> None:
        try:
            answer = self._api("GET", f"/local/outbox?after={self._seen}")
        except Exception as error:
            self._failed("outbox", error)
            return
        for entry in answer.get("messages", []) if isinstance(answer, Mapping) else []:
            self._seen = max(self._seen, int(entry.get("sequence", entry.get("seq", 0))))
            if (
                entry.get("channel") == "email"
                and entry.get("status") == "sent"
                and entry.get("message_id")
                and entry.get("contact_id") in self._cast
            ):
                self._receive(entry)

    def _receive(self, email: Mapping[str, Any]) -> None:
        """A cast member's mailbox gets `email`: decide, reproducibly, what its recipient
        does with it, and schedule the SES events that follow."""
        contact_id, workflow, step = (
            str(email["contact_id"]),
            str(email["workflow_id"]),
            str(email["step_id"]),
        )
        key = (contact_id, workflow, step)
        self._sent_by_step[key] += 1
        rng = random.Random(
            f"{self.scenario.seed}/{contact_id}/{workflow}/{step}/{self._sent_by_step[key]}"
        )
        recipients = self.scenario.recipients
        mailbox = self._mailboxes[self._cast[contact_id].mailbox]
        sent = _parse_time(str(email["at"]))

        def later(base: datetime, window: tuple[float, float]) -> datetime:
            return base + timedelta(seconds=rng.uniform(*window))

        if rng.random() < recipients.bounce:
            self._publish_later(later(sent, recipients.delivered_after), "Bounce", email)
            return
        delivered = later(sent, recipients.delivered_after)
        self._publish_later(delivered, "Delivery", email)
        if rng.random() < recipients.complaint:
            self._publish_later(later(delivered, recipients.opened_after), "Complaint", email)
            return
        if rng.random() >= mailbox.open:
            return
        opened = later(sent, recipients.opened_after)
        opened = max(opened, delivered)
        self._publish_later(opened, "Open", email)
        links = _links(str(email.get("body") or ""))
        if links and rng.random() < mailbox.click:
            link = rng.choice(links)
            self._publish_later(later(opened, recipients.clicked_after), "Click", email, link)
        unsubscribe = _unsubscribe_link(str(email.get("body") or ""))
        if unsubscribe and rng.random() < mailbox.unsubscribe:
            self._schedule(
                later(opened, recipients.unsubscribed_after),
                "unsubscribe",
                lambda: self._unsubscribe(contact_id, unsubscribe),
            )

    def _publish_later(
        self,
        due: datetime,
        kind: Literal["Delivery", "Open", "Click", "Bounce", "Complaint"],
        email: Mapping[str, Any],
        link: str = "",
    ) -> None:
        self._schedule(due, kind, lambda: self._publish(kind, email, link))

    def _publish(
        self,
        kind: Literal["Delivery", "Open", "Click", "Bounce", "Complaint"],
        email: Mapping[str, Any],
        link: str,
    ) -> None:
        sns = self._sns_client()
        record = ses_record(
            kind,
            email,
            clock.now(),
            link=link,
            source=self._sender or "",
            configuration_set=self._configuration_set,
        )
        sns.publish(TopicArn=self._feedback_topic(), Message=json.dumps(record))
        self._count(
            {
                "Delivery": "delivered",
                "Open": "opened",
                "Click": "clicked",
                "Bounce": "bounced",
                "Complaint": "complained",
            }[kind]
        )
        logger.info("demo: SES %s for %s", kind, email.get("contact_id"))

    def _unsubscribe(self, contact_id: str, link: str) -> None:
        """What a mailbox does for RFC 8058 one-click unsubscribe: POST the signed link
        (to this stack's API: the link names the public address of a deployment)."""
        query = urllib.parse.urlsplit(link).query
        request = urllib.request.Request(
            f"{self.api_url}{_UNSUBSCRIBE_PATH}?{query}",
            data=b"List-Unsubscribe=One-Click",
            method="POST",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            response.read()
        self._count("unsubscribed")
        logger.info("demo: %s unsubscribed (one-click)", contact_id)

    # --- AWS and HTTP --------------------------------------------------------------------

    def _client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            region_name=_REGION,
            endpoint_url=self.aws_endpoint,
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def _sns_client(self) -> Any:
        if self._sns is None:
            self._sns = self._client("sns")
        return self._sns

    def _feedback_topic(self) -> str:
        """The configuration set's SNS topic (`FeedbackTopic` of template.yaml), found as
        anyone with the AWS endpoint would find it; also learns the sender and the
        configuration set for the records' `mail` fields."""
        if self._topic is None:
            topics = [
                topic["TopicArn"]
                for page in self._sns_client().get_paginator("list_topics").paginate()
                for topic in page.get("Topics", [])
            ]
            found = [
                arn for arn in topics if arn.rsplit(":", 1)[-1].startswith("journeys-ses-feedback")
            ]
            if not found:
                raise LookupError("no journeys-ses-feedback topic at the AWS endpoint")
            self._topic = found[0]
            self._learn_sender()
        return self._topic

    def _learn_sender(self) -> None:
        try:
            ses = self._ses or self._client("ses")
            identities = ses.list_identities(IdentityType="EmailAddress").get("Identities", [])
            self._sender = identities[0] if identities else None
            sets = ses.list_configuration_sets().get("ConfigurationSets", [])
            names = [s["Name"] for s in sets if str(s.get("Name", "")).startswith("journeys-")]
            self._configuration_set = names[0] if names else ""
        except Exception as error:  # optional fields of the record: go on without them
            logger.debug("demo: sender and configuration set unknown: %s", error)

    def _api(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.api_url + path,
            data=data,
            method=method,
            headers={"x-api-key": self.api_key, "content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:300]
            raise RuntimeError(f"{method} {path} answered {error.code}: {detail}") from None
        return json.loads(text) if text else None

    def _count(self, what: str) -> None:
        with self._lock:
            self._counts[what] += 1

    def _failed(self, what: str, error: BaseException) -> None:
        if self._stopping.is_set():
            return  # the stack is going away: calls in flight fail, that is expected
        self._count("failed")
        self._warned[what] += 1
        if self._warned[what] <= _WARNINGS_PER_KIND:
            logger.warning("demo: %s failed: %s", what, error)
        else:
            logger.debug("demo: %s failed: %s", what, error)


def _links(body: str) -> list[str]:
    """Links a reader may click: everything but the unsubscribe and preference links."""
    found = [link.rstrip(".,;:") for link in _LINK.findall(body)]
    return [link for link in dict.fromkeys(found) if _UNSUBSCRIBE_PATH not in link]


def _unsubscribe_link(body: str) -> str | None:
    match = _UNSUBSCRIBE_LINE.search(body)
    if match is None or _UNSUBSCRIBE_PATH not in match.group(1):
        return None
    return match.group(1)


# --- python -m journeys.local.demo [file] -------------------------------------------------


def main(argv: Sequence[str] | None = None, out: Callable[[str], object] = print) -> int:
    """Check a scenario file and show the first cohort it plays (no stack needed)."""
    args = list(sys.argv[1:] if argv is None else argv)
    path = Path(args[0]) if args else DEFAULT_SCENARIO
    try:
        scenario = load_scenario(path)
    except InvalidScenario as error:
        out(str(error))
        out(f"✗ {len(error.diagnostics)} problem(s) in {path}")
        return 1
    arrivals = plan(scenario)
    for arrival in arrivals:
        steps = ", ".join(
            f"{a.event or 'update'} +{describe_seconds(int(a.after))}" for a in arrival.actions
        )
        out(
            f"{arrival.at:6.1f} s  {arrival.contact_id}  {arrival.name:<18} "
            f"{arrival.story:<18} {arrival.mailbox:<8} {steps}"
        )
    stories = Counter(arrival.story for arrival in arrivals)
    out(
        f"✓ {path}: {len(arrivals)} contacts over {arrivals[-1].at:.0f} s, "
        f"{len(stories)} of {len(scenario.stories)} stories"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
