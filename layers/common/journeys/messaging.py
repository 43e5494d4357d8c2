"""Sending one message: the request, the policy, the decision, the content and delivery.

Every send step of a compiled workflow is a Task calling the send function with a
`SendRequest` (built by `journeys.compiler.emit.emit_send`). The send function loads the
contact, the template and the contact's recent sends, then asks `decide`:

- `Skip`   the contact cannot get the message on this channel (no address, unsubscribed,
           bounced, complained): nothing is sent and the journey goes on;
- `Defer`  not now (quiet hours, frequency cap): the function raises
           `SendDeferred(defer.timestamp)` and the state machine waits until then and
           calls again, so consent and the cap are checked again on fresh data;
- `Send`   the rendered fields and the address, ready for `deliver`.

Everything up to the decision is pure (no clock, no AWS): the caller passes `now`, the
contact and the sends to count. Delivery goes through SES v2 (email as a raw MIME message,
so List-Unsubscribe and the one-click header reach the mailbox) and SNS (SMS and mobile
push). Channels with no AWS delivery here (web push, in-app, on-site, WhatsApp) are not in
`DELIVERABLE_CHANNELS`; the caller must check it before sending.

Clients are passed in; with `client=None` a boto3 client is created when first needed.
Nothing here reads the environment or does I/O at import.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from email.headerregistry import BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import SMTP, Policy
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, model_validator

from journeys import aws, clock
from journeys.contacts import (
    BOUNCED,
    COMPLAINED,
    UNSUBSCRIBED,
    ContactView,
    address_for,
    is_reachable,
)
from journeys.exceptions import ChannelUnreachable, SendDeferred, TransientError
from journeys.templates import EmailTemplate, PushTemplate, SmsTemplate, TeamTemplate, render

#: A parsed template (`journeys.templates.TEMPLATE_ADAPTER.validate_python(...)`).
Template = EmailTemplate | SmsTemplate | PushTemplate | TeamTemplate
Channel = Literal["email", "sms", "push", "web_push", "in_app", "on_site", "whatsapp", "team"]

#: Channels `deliver` can send on. The others (web_push, in_app, on_site, whatsapp) need a
#: provider this package does not have yet (a web-push service with VAPID keys, the app's
#: or site's own inbox, a WhatsApp Business API account): the send function must not call
#: `deliver` for them.
DELIVERABLE_CHANNELS: frozenset[str] = frozenset({"email", "sms", "push", "team"})

#: Which template channels each request channel accepts (SMS and WhatsApp templates are
#: interchangeable, as the compiler allows).
_TEMPLATE_CHANNELS: dict[str, frozenset[str]] = {
    "email": frozenset({"email"}),
    "sms": frozenset({"sms", "whatsapp"}),
    "whatsapp": frozenset({"sms", "whatsapp"}),
    "push": frozenset({"push"}),
    "web_push": frozenset({"web_push"}),
    "in_app": frozenset({"in_app"}),
    "on_site": frozenset({"on_site"}),
    "team": frozenset({"team"}),
}

_TIME_OF_DAY = r"^([01]\d|2[0-3]):[0-5]\d$"

# --- The request --------------------------------------------------------------------------


class _Payload(BaseModel):
    # Unknown fields are ignored, not rejected: a Standard execution runs up to a year on the
    # definition it started with, so the send function must accept payloads written by
    # older and newer compilers alike. What the function needs is still validated strictly
    # (types, the channel, times of day).
    model_config = ConfigDict(extra="ignore", frozen=True)


class QuietHoursPolicy(_Payload):
    start: str = Field(pattern=_TIME_OF_DAY)
    end: str = Field(pattern=_TIME_OF_DAY)


class FrequencyCapPolicy(_Payload):
    max: int = Field(ge=1)
    per_seconds: int = Field(ge=1)


class SendPolicy(_Payload):
    quiet_hours: QuietHoursPolicy | None = None
    frequency_cap: FrequencyCapPolicy | None = None
    default_time_zone: str | None = None


class SendRequest(_Payload):
    """The send function's payload, as `emit_send` compiles it."""

    contact_id: str = Field(min_length=1)
    workflow_id: str = Field(min_length=1)
    step_id: str
    step_label: str
    execution_id: str
    trigger: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)
    channel: Channel
    template: str = Field(min_length=1)
    to_attribute: str | None = None
    to: str | None = None
    policy: SendPolicy = Field(default_factory=SendPolicy)

    @model_validator(mode="after")
    def _fixed_address_for_team_only(self) -> SendRequest:
        # A fixed address would bypass the contact's consent: only team alerts have one.
        if self.to is not None and self.channel != "team":
            raise ValueError('"to" (a fixed address) is only allowed for team alerts')
        return self


# --- Policy: quiet hours and the frequency cap (pure) -------------------------------------


def _aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {moment!r}")
    return moment


def _time_of_day(value: str | time) -> time:
    if isinstance(value, time):
        return value.replace(tzinfo=None)
    if not re.match(_TIME_OF_DAY, value):
        raise ValueError(f'expected a time of day as "HH:MM", got {value!r}')
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def quiet_until(now: datetime, zone: tzinfo, start: str | time, end: str | time) -> datetime | None:
    """When the quiet hours around `now` end (UTC), or None if `now` is not inside them.

    Times are wall-clock times in `zone`. Quiet hours run from `start` (included) to `end`
    (excluded) and cross midnight when `start` is later than `end` (21:00-08:00). Equal
    start and end mean no quiet hours. The end is the next `end` on the local calendar; on
    a day when daylight saving skips that wall time, it is the instant the skipped hour
    resumes.
    """
    _aware(now, "now")
    begins, ends = _time_of_day(start), _time_of_day(end)
    if begins == ends:
        return None
    local = now.astimezone(zone)
    wall = local.time().replace(tzinfo=None)
    if begins < ends:
        if not begins <= wall < ends:
            return None
        end_day: date = local.date()
    elif wall >= begins:
        end_day = local.date() + timedelta(days=1)
    elif wall < ends:
        end_day = local.date()
    else:
        return None
    until = datetime.combine(end_day, ends, tzinfo=zone).astimezone(UTC)
    return until if until > now else None


def cap_until(
    recent_sends: Sequence[datetime], max: int, per_seconds: int, now: datetime
) -> datetime | None:
    """When one more message fits under the cap (UTC), or None if it fits now.

    `recent_sends` are the contact's sends on every workflow and channel the cap counts. A
    send counts while it is less than `per_seconds` old: one sent exactly `per_seconds` ago
    has left the window. Sending now needs fewer than `max` counted sends, so the answer is
    the moment enough of the oldest leave the window (the oldest one when exactly `max`
    are counted).
    """
    _aware(now, "now")
    if max < 1 or per_seconds < 1:
        raise ValueError("a frequency cap needs max >= 1 and per_seconds >= 1")
    period = timedelta(seconds=per_seconds)
    window_start = now - period
    counted = sorted(_aware(sent, "a recent send") for sent in recent_sends)
    counted = [sent for sent in counted if sent > window_start]
    if len(counted) < max:
        return None
    # With n counted, n - max + 1 must leave: the (n - max + 1)th oldest is the last of them.
    return (counted[len(counted) - max] + period).astimezone(UTC)


def zone_for(contact: ContactView, policy: SendPolicy | None = None) -> tzinfo:
    """The contact's time zone, else the workflow's, else UTC. A name the time-zone
    database does not know (contact data is free-form) falls through to the next."""
    candidates = (contact.time_zone, policy.default_time_zone if policy else None)
    for name in candidates:
        if not name:
            continue
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
            continue
    return UTC


def not_before(
    now: datetime,
    policy: SendPolicy,
    zone: tzinfo,
    recent_sends: Sequence[datetime],
) -> datetime:
    """The earliest moment (>= now) both the quiet hours and the cap allow a send.

    Each rule can push the other later (the cap frees up at 23:00, inside quiet hours), so
    this steps forward until both agree: one wait instead of several round trips.
    """
    moment = _aware(now, "now")
    quiet, cap = policy.quiet_hours, policy.frequency_cap
    for _ in range(32):  # converges in two or three steps; the bound is a safety net
        waits: list[datetime | None] = []
        if quiet is not None:
            waits.append(quiet_until(moment, zone, quiet.start, quiet.end))
        if cap is not None:
            waits.append(cap_until(recent_sends, cap.max, cap.per_seconds, moment))
        later = [until for until in waits if until is not None]
        if not later:
            break
        moment = max(later)
    return moment


# --- Signed links --------------------------------------------------------------------------

LinkAction = Literal["unsubscribe", "preferences"]
LINK_ACTIONS: tuple[LinkAction, ...] = ("unsubscribe", "preferences")
_SIGNATURE_VERSION = "journeys-link-v1"


def _signature(action: str, contact_id: str, workflow_id: str, secret: bytes) -> str:
    # JSON keeps the fields apart whatever they contain (no separator ambiguity).
    message = json.dumps([_SIGNATURE_VERSION, action, contact_id, workflow_id])
    digest = hmac.new(secret, message.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def sign_link(base_url: str, action: str, contact_id: str, workflow_id: str, secret: bytes) -> str:
    """A URL for `action` on behalf of the contact: `base_url?action=..&contact=..&
    workflow=..&sig=..`, with an HMAC-SHA256 of the three values (base64url, no padding).

    Links do not expire: an unsubscribe link must keep working in an old email.
    """
    if action not in LINK_ACTIONS:
        raise ValueError(f"unknown link action {action!r}; use one of {', '.join(LINK_ACTIONS)}")
    if not secret:
        raise ValueError("an empty secret would make every link forgeable")
    query = urlencode(
        {
            "action": action,
            "contact": contact_id,
            "workflow": workflow_id,
            "sig": _signature(action, contact_id, workflow_id, secret),
        }
    )
    return f"{base_url}{'&' if '?' in base_url else '?'}{query}"


def verify_link(
    query_params: Mapping[str, str | Sequence[str]],
    secret: bytes,
    *,
    previous_secrets: Sequence[bytes] = (),
) -> tuple[str, str, str] | None:
    """(contact_id, workflow_id, action) from a signed link's query parameters, or None if
    anything is missing, unknown or not signed with `secret` (or a secret being rotated
    out, in `previous_secrets`). Accepts API Gateway's `queryStringParameters` and
    `urllib.parse.parse_qs` output alike."""

    def one(name: str) -> str | None:
        value = query_params.get(name)
        if isinstance(value, str):
            return value
        if value is not None and len(value) == 1 and isinstance(value[0], str):
            return value[0]
        return None

    action, contact_id, workflow_id, given = (
        one(name) for name in ("action", "contact", "workflow", "sig")
    )
    if action not in LINK_ACTIONS or not contact_id or workflow_id is None or not given:
        return None
    for key in (secret, *previous_secrets):
        if not key:
            continue
        expected = _signature(action, contact_id, workflow_id, key)
        if hmac.compare_digest(expected.encode("ascii"), given.encode("utf-8")):
            return contact_id, workflow_id, action
    return None


@dataclass(frozen=True, slots=True)
class LinkSigner:
    """Signs the `links` of the render context (`base_url` is the public link endpoint)."""

    base_url: str
    secret: bytes = field(repr=False)

    def links(self, contact_id: str, workflow_id: str) -> dict[str, str]:
        return {
            action: sign_link(self.base_url, action, contact_id, workflow_id, self.secret)
            for action in LINK_ACTIONS
        }


# --- The decision --------------------------------------------------------------------------

SkipReason = Literal[
    "no-address",  # no address on the channel, in `to_attribute`, or for the team alert
    "invalid-address",  # an address that cannot be sent to (not an email, not E.164)
    "unsubscribed",
    "bounced",
    "complained",
    "unreachable",  # any other status than subscribed
]


@dataclass(frozen=True, slots=True)
class Skip:
    """Do not send: the contact cannot get this message."""

    reason: SkipReason
    detail: str

    def error(self) -> ChannelUnreachable:
        return ChannelUnreachable(f"{self.reason}: {self.detail}")


@dataclass(frozen=True, slots=True)
class Defer:
    """Not now: try again at `until` (UTC, whole seconds, never earlier than allowed)."""

    until: datetime

    @property
    def timestamp(self) -> str:
        """RFC 3339 in UTC with a Z, as a Step Functions Wait's TimestampPath wants it."""
        return self.until.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def error(self) -> SendDeferred:
        """What the send function raises; its message is the time to try again."""
        return SendDeferred(self.timestamp)


@dataclass(frozen=True, slots=True)
class Send:
    """Send now: `rendered` holds the template's text fields, rendered for the contact."""

    channel: Channel
    address: str
    rendered: Mapping[str, str]
    #: The signed one-click unsubscribe URL for marketing email (List-Unsubscribe); None for
    #: transactional email, team alerts and other channels.
    unsubscribe_url: str | None = None
    transactional: bool = False


Decision = Skip | Defer | Send


def contact_context(contact: ContactView) -> dict[str, Any]:
    """`contact` in templates: the attributes, plus `id`, `tags` (sorted names) and the
    email address and phone number on file when no attribute of that name exists."""
    values: dict[str, Any] = dict(contact.attributes)
    values["id"] = contact.contact_id
    values.setdefault("tags", sorted(contact.tags))
    for name, channel in (("email", "email"), ("phone", "sms")):
        state = contact.channels.get(channel)
        if state is not None and state.address:
            values.setdefault(name, state.address)
    if contact.time_zone:
        values.setdefault("time_zone", contact.time_zone)
    return values


def event_properties(trigger: Mapping[str, Any]) -> dict[str, Any]:
    """`event` in templates: the `properties` of the event that started the journey, as the
    router puts them in the execution input's `trigger` (empty for other triggers)."""
    properties = trigger.get("properties")
    return dict(properties) if isinstance(properties, Mapping) else {}


def render_context(
    request: SendRequest,
    contact: ContactView,
    links: Mapping[str, str] | None = None,
    workflow_name: str | None = None,
) -> dict[str, Any]:
    """The five roots templates may read (see `journeys.templates`)."""
    return {
        "contact": contact_context(contact),
        "event": event_properties(request.trigger),
        "data": dict(request.data),
        "workflow": {"id": request.workflow_id, "name": workflow_name or request.workflow_id},
        "links": dict(links) if links else {action: "" for action in LINK_ACTIONS},
    }


_EMAIL = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def normalize_address(channel: str, address: str) -> str | None:
    """The address as it is sent to, or None if it cannot be: emails must look like
    `local@domain.tld`, phone numbers must be E.164 once spaces, dots, dashes, brackets
    and a "(0)" trunk prefix are removed (a leading 00 reads as +). Other channels'
    addresses (tokens, ARNs, ids) are taken as they are."""
    address = address.strip()
    if channel in ("email", "team"):
        return address if _EMAIL.match(address) else None
    if channel in ("sms", "whatsapp"):
        # "+44 (0)20 ..." writes the trunk prefix a caller from abroad leaves out.
        phone = re.sub(r"[\s.\-()]", "", address.replace("(0)", ""))
        if phone.startswith("00"):
            phone = "+" + phone[2:]
        return phone if _E164.match(phone) else None
    return address or None


_STATUS_REASONS: dict[str, SkipReason] = {
    UNSUBSCRIBED: "unsubscribed",
    BOUNCED: "bounced",
    COMPLAINED: "complained",
}


def _status_skip(channel: str, status: str) -> Skip:
    return Skip(_STATUS_REASONS.get(status, "unreachable"), f"{channel} is {status}")


def recipient(request: SendRequest, contact: ContactView) -> str | Skip:
    """Who gets the message, or why nobody does.

    - Team alerts go to `to`, or the address in the contact attribute `to_attribute`; the
      contact's consent and channel state play no part.
    - Contact messages go to the channel's address if `is_reachable` says so.
    - With `to_attribute` (a parent, an account owner) the message goes to that attribute's
      address, which has no consent record of its own. It is still a message of the
      contact's journey, so it is skipped when the contact unsubscribed from or complained
      about the channel; a bounce on the contact's own address does not matter, unless the
      attribute holds that same address, in which case the full `is_reachable` rule applies.
    """
    channel = request.channel
    if channel == "team":
        address = request.to
        if not address and request.to_attribute:
            address = address_for(contact, "email", request.to_attribute)
        if not address:
            where = f"attribute {request.to_attribute!r}" if request.to_attribute else '"to"'
            return Skip("no-address", f"no team address in {where}")
        return _checked(channel, address)
    state = contact.channels.get(channel)
    if request.to_attribute:
        address = address_for(contact, channel, request.to_attribute)
        if not address:
            return Skip("no-address", f"attribute {request.to_attribute!r} holds no address")
        if state is not None:
            same_address = bool(state.address) and str(state.address).strip() == address.strip()
            opted_out = state.status in (UNSUBSCRIBED, COMPLAINED)
            if opted_out or (same_address and not is_reachable(contact, channel)):
                return _status_skip(channel, state.status)
        return _checked(channel, address)
    if state is None or not state.address:
        return Skip("no-address", f"no {channel} address on file")
    if not is_reachable(contact, channel):
        return _status_skip(channel, state.status)
    return _checked(channel, state.address)


def _checked(channel: str, address: str) -> str | Skip:
    normalized = normalize_address(channel, address)
    if normalized is None:
        return Skip("invalid-address", f"{address!r} is not a valid {channel} address")
    return normalized


def _tidy(rendered: Mapping[str, str]) -> dict[str, str]:
    """One-line subjects and titles (no header injection, no stray breaks), trimmed text;
    optional fields that rendered empty are left out."""
    tidy: dict[str, str] = {}
    for name, value in rendered.items():
        if name in ("subject", "preheader", "title", "url", "button"):
            value = " ".join(value.split())
        elif name != "html":
            value = value.strip()
        if value or name in ("html", "text", "subject", "title", "body"):
            tidy[name] = value
    return tidy


def decide(
    request: SendRequest,
    contact: ContactView,
    template: Template,
    recent_sends: Sequence[datetime],
    now: datetime,
    *,
    signer: LinkSigner | None = None,
    workflow_name: str | None = None,
) -> Decision:
    """Skip, defer or send one message, on fresh contact data.

    Order: the recipient first (a skipped message is never held), then the quiet hours and
    the frequency cap in the contact's time zone (`zone_for`), then rendering. Team alerts
    skip reachability and policy. `recent_sends` are the contact's sends the cap counts
    (every workflow). Marketing email needs `signer`: it must carry an unsubscribe link.
    """
    _aware(now, "now")
    if template.channel not in _TEMPLATE_CHANNELS[request.channel]:
        raise ValueError(
            f"template {request.template!r} is for {template.channel!r}, "
            f"the step sends {request.channel!r}"
        )
    to = recipient(request, contact)
    if isinstance(to, Skip):
        return to
    if request.channel != "team":
        moment = not_before(now, request.policy, zone_for(contact, request.policy), recent_sends)
        if moment > now:
            return Defer(_ceil_second(moment))
    marketing_email = isinstance(template, EmailTemplate) and not template.transactional
    if marketing_email and signer is None:
        raise ValueError("marketing email needs signed links (an unsubscribe URL): no signer")
    links = signer.links(contact.contact_id, request.workflow_id) if signer else None
    context = render_context(request, contact, links, workflow_name)
    rendered = _tidy(render(template, context))
    return Send(
        channel=request.channel,
        address=to,
        rendered=rendered,
        unsubscribe_url=links["unsubscribe"] if marketing_email and links else None,
        transactional=isinstance(template, EmailTemplate) and template.transactional,
    )


def _ceil_second(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    whole = moment.replace(microsecond=0)
    return whole if whole == moment else whole + timedelta(seconds=1)


# --- Email content -------------------------------------------------------------------------


class _VerbatimHeader(UnstructuredHeader, BaseHeader):
    """Written on one line, as given. List-Unsubscribe holds `<URL>`; the default folding
    would turn a long URL into RFC 2047 encoded words, which no mailbox decodes there."""

    def fold(self, *, policy: Policy) -> str:
        return f"{self.name}: {self}{policy.linesep}"


def _email_policy() -> Policy:
    registry = HeaderRegistry()
    registry.map_to_type("list-unsubscribe", _VerbatimHeader)
    return SMTP.clone(header_factory=registry)


_EMAIL_POLICY = _email_policy()
_PREHEADER_STYLE = (
    "display:none!important;visibility:hidden;mso-hide:all;font-size:1px;line-height:1px;"
    "max-height:0;max-width:0;opacity:0;overflow:hidden;color:transparent"
)
_BODY_TAG = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
#: Headers are limited to 998 characters a line (RFC 5322); keep room for the name.
_MAX_UNSUBSCRIBE_URL = 900


def with_preheader(html_body: str, preheader: str | None) -> str:
    """The html with the preheader as a hidden span first in the body: inboxes show it
    next to the subject, readers of the opened email do not see it."""
    if not preheader:
        return html_body
    span = f'<span style="{_PREHEADER_STYLE}">{html.escape(preheader)}</span>'
    body_tag = _BODY_TAG.search(html_body)
    if body_tag is None:
        return f"{span}\n{html_body}"
    return f"{html_body[: body_tag.end()]}\n{span}{html_body[body_tag.end() :]}"


def _unsubscribe_header(url: str) -> str:
    parts = urlsplit(url)
    local = parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1", "::1")
    if parts.scheme != "https" and not local:
        raise ValueError(f"one-click unsubscribe needs an https URL (RFC 8058), got {url!r}")
    if not url.isascii() or any(c.isspace() or c in "<>" for c in url):
        raise ValueError(f"unsubscribe URL must be ASCII without spaces or <>: {url!r}")
    if len(url) > _MAX_UNSUBSCRIBE_URL:
        raise ValueError(f"unsubscribe URL longer than {_MAX_UNSUBSCRIBE_URL} characters")
    return f"<{url}>"


def build_email(
    sender: str,
    recipient: str,
    rendered: Mapping[str, str],
    unsubscribe_url: str | None,
    preheader: str | None = None,
    message_id_domain: str | None = None,
    *,
    date: datetime | None = None,
) -> bytes:
    """A MIME message ready for SES `Raw` content (CRLF line ends, 7-bit clean).

    `rendered` needs `subject` and `text`; with `html` the message is
    multipart/alternative (text, then html), without it (team alerts) plain text.
    `preheader` defaults to `rendered["preheader"]`. With `unsubscribe_url` (marketing
    email) it carries `List-Unsubscribe: <url>` and `List-Unsubscribe-Post:
    List-Unsubscribe=One-Click` (RFC 8058); pass None for transactional email. Non-ASCII
    subjects and names are RFC 2047 encoded, bodies are UTF-8 quoted-printable. The
    Message-ID's domain defaults to the sender's; `date` defaults to now.
    """
    message = EmailMessage(policy=_EMAIL_POLICY)
    message["Subject"] = " ".join(rendered["subject"].split())
    message["From"] = sender
    message["To"] = recipient
    message["Date"] = format_datetime((date or clock.now()).astimezone(UTC), usegmt=True)
    domain = message_id_domain or parseaddr(sender)[1].rpartition("@")[2] or "journeys.invalid"
    message["Message-ID"] = make_msgid(domain=domain)
    if unsubscribe_url is not None:
        message["List-Unsubscribe"] = _unsubscribe_header(unsubscribe_url)
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(
        _text_body(rendered["text"]), subtype="plain", charset="utf-8", cte="quoted-printable"
    )
    if rendered.get("html"):
        html_body = with_preheader(rendered["html"], preheader or rendered.get("preheader"))
        message.add_alternative(html_body, subtype="html", charset="utf-8", cte="quoted-printable")
    for part in message.iter_parts():
        del part["MIME-Version"]  # add_alternative copies it into the parts; once is enough
    return message.as_bytes()


def _text_body(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


# --- Delivery ------------------------------------------------------------------------------

#: AWS error codes worth another try later (the state machine retries TransientError).
_TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "Throttled",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "KMSThrottlingException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "InternalErrorException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)
#: botocore's network-level failures, by class name (no botocore import needed).
_TRANSIENT_CLASSES = frozenset(
    {
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "ConnectionError",
    }
)
#: SNS says the push endpoint is disabled (uninstalled app, expired token).
_UNREACHABLE_CODES = frozenset({"EndpointDisabled"})


def _client(service: str, client: Any) -> Any:
    if client is not None:
        return client
    return aws.client(service)


def _call(operation: Callable[..., dict[str, Any]], **arguments: Any) -> dict[str, Any]:
    """Run one AWS call; throttling and 5xx become TransientError (retried by the state
    machine), a disabled push endpoint ChannelUnreachable, anything else propagates."""
    try:
        return operation(**arguments)
    except Exception as error:
        response = getattr(error, "response", None)
        details = response if isinstance(response, dict) else {}
        code = str(details.get("Error", {}).get("Code", ""))
        status = details.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _UNREACHABLE_CODES:
            raise ChannelUnreachable(f"{code}: {error}") from error
        if (
            code in _TRANSIENT_CODES
            or (isinstance(status, int) and status >= 500)
            or type(error).__name__ in _TRANSIENT_CLASSES
        ):
            raise TransientError(f"{code or type(error).__name__}: {error}") from error
        raise


_TAG_CHARS = re.compile(r"[^A-Za-z0-9_.@-]")


def _ses_tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """SES message tags allow letters, digits, _ - . @ and 256 characters."""
    return [
        {"Name": _TAG_CHARS.sub("_", name)[:256], "Value": _TAG_CHARS.sub("_", value)[:256]}
        for name, value in tags.items()
        if name and value
    ]


def deliver_email(
    raw: bytes,
    configuration_set: str | None,
    client: Any = None,
    *,
    tags: Mapping[str, str] | None = None,
) -> str:
    """Send a MIME message with SES v2 `Raw` content; sender and recipients come from its
    From and To headers. `tags` become SES message tags, which the configuration set's
    events (delivery, open, click, bounce, complaint) carry back. Returns the MessageId."""
    arguments: dict[str, Any] = {"Content": {"Raw": {"Data": raw}}}
    if configuration_set:
        arguments["ConfigurationSetName"] = configuration_set
    if tags:
        arguments["EmailTags"] = _ses_tags(tags)
    response = _call(_client("sesv2", client).send_email, **arguments)
    return str(response["MessageId"])


SmsType = Literal["Transactional", "Promotional"]


def deliver_sms(
    phone: str, text: str, client: Any = None, *, sms_type: SmsType = "Promotional"
) -> str:
    """Send an SMS with SNS to an E.164 number. Journey messages are marketing unless the
    caller knows better, so the default type is Promotional (cheaper routes, and what
    carriers' rules expect for marketing); reminders the contact relies on can pass
    Transactional. Returns the SNS MessageId."""
    response = _call(
        _client("sns", client).publish,
        PhoneNumber=phone,
        Message=text,
        MessageAttributes={
            "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": sms_type},
        },
    )
    return str(response["MessageId"])


def push_message(title: str, body: str, url: str | None) -> str:
    """The SNS `MessageStructure=json` document for a mobile push: FCM (HTTP v1 format,
    under GCM), APNs (production and sandbox) and a plain `default`."""
    data = {"url": url} if url else {}
    fcm_message: dict[str, Any] = {"notification": {"title": title, "body": body}}
    if data:
        fcm_message["data"] = data  # FCM data values must be strings
    fcm = {"fcmV1Message": {"message": fcm_message}}
    apns: dict[str, Any] = {"aps": {"alert": {"title": title, "body": body}}, **data}
    return json.dumps(
        {
            "default": f"{title}: {body}",
            "GCM": json.dumps(fcm),
            "APNS": json.dumps(apns),
            "APNS_SANDBOX": json.dumps(apns),
        }
    )


def deliver_push(
    endpoint_arn: str, title: str, body: str, url: str | None, client: Any = None
) -> str:
    """Publish a mobile push to an SNS platform endpoint. Returns the SNS MessageId;
    a disabled endpoint raises ChannelUnreachable."""
    response = _call(
        _client("sns", client).publish,
        TargetArn=endpoint_arn,
        MessageStructure="json",
        Message=push_message(title, body, url),
    )
    return str(response["MessageId"])


def push_endpoint(address: str, application_arn: str | None, client: Any = None) -> str:
    """The SNS endpoint ARN for a contact's push address: the address itself when it is
    already an endpoint ARN, else a device token registered with the platform application
    (CreatePlatformEndpoint is idempotent for the same token)."""
    if address.startswith("arn:"):
        return address
    if not application_arn:
        raise ValueError("a push device token needs a platform application ARN")
    response = _call(
        _client("sns", client).create_platform_endpoint,
        PlatformApplicationArn=application_arn,
        Token=address,
    )
    return str(response["EndpointArn"])


@dataclass(frozen=True, slots=True)
class DeliveryOptions:
    """Deployment settings `deliver` needs."""

    sender: str  # From of email and team alerts, e.g. "Shop <news@example.com>"
    configuration_set: str | None = None
    push_application_arn: str | None = None  # only for raw device tokens
    message_id_domain: str | None = None
    sms_type: SmsType = "Promotional"


@dataclass(frozen=True, slots=True)
class Clients:
    """AWS clients for `deliver` (created when first needed if left out)."""

    sesv2: Any = None
    sns: Any = None


@dataclass(frozen=True, slots=True)
class _Extra:
    now: datetime | None
    tags: Mapping[str, str] | None


def _email(send: Send, options: DeliveryOptions, clients: Clients, extra: _Extra) -> str:
    raw = build_email(
        options.sender,
        send.address,
        send.rendered,
        send.unsubscribe_url,
        message_id_domain=options.message_id_domain,
        date=extra.now,
    )
    return deliver_email(raw, options.configuration_set, clients.sesv2, tags=extra.tags)


def _sms(send: Send, options: DeliveryOptions, clients: Clients, extra: _Extra) -> str:
    return deliver_sms(send.address, send.rendered["text"], clients.sns, sms_type=options.sms_type)


def _push(send: Send, options: DeliveryOptions, clients: Clients, extra: _Extra) -> str:
    endpoint = push_endpoint(send.address, options.push_application_arn, clients.sns)
    rendered = send.rendered
    return deliver_push(
        endpoint, rendered["title"], rendered["body"], rendered.get("url"), clients.sns
    )


_DELIVERY: dict[str, Callable[[Send, DeliveryOptions, Clients, _Extra], str]] = {
    "email": _email,
    "team": _email,
    "sms": _sms,
    "push": _push,
}
assert frozenset(_DELIVERY) == DELIVERABLE_CHANNELS


def deliver(
    send: Send,
    options: DeliveryOptions,
    clients: Clients | None = None,
    *,
    now: datetime | None = None,
    tags: Mapping[str, str] | None = None,
) -> str:
    """Deliver a `Send` decision; returns the provider's message id. Email and team
    alerts go through SES v2, SMS and push through SNS. `tags` label the email for SES
    events (see `message_tags`). A channel outside `DELIVERABLE_CHANNELS` is a ValueError:
    check it before deciding."""
    try:
        handler = _DELIVERY[send.channel]
    except KeyError:
        raise ValueError(
            f"no delivery for channel {send.channel!r}; deliverable: "
            f"{', '.join(sorted(DELIVERABLE_CHANNELS))}"
        ) from None
    return handler(send, options, clients or Clients(), _Extra(now, tags))


#: Marks a tag value that was base32-encoded because SES would have mangled it.
ENCODED_TAG_PREFIX = "b32."


def encode_tag_value(value: str) -> str:
    """SES tag values allow only letters, digits, _ - . @: encode anything else reversibly
    so feedback can find the contact again (see `decode_tag_value`)."""
    if not _TAG_CHARS.search(value) and not value.startswith(ENCODED_TAG_PREFIX):
        return value
    encoded = base64.b32encode(value.encode()).decode().rstrip("=").lower()
    return ENCODED_TAG_PREFIX + encoded


def decode_tag_value(value: str) -> str:
    if not value.startswith(ENCODED_TAG_PREFIX):
        return value
    body = value[len(ENCODED_TAG_PREFIX) :].upper()
    return base64.b32decode(body + "=" * (-len(body) % 8)).decode()


def message_tags(request: SendRequest) -> dict[str, str]:
    """Tags that tie SES events back to the journey step and the contact."""
    return {
        "contact_id": encode_tag_value(request.contact_id),
        "workflow_id": request.workflow_id,
        "step_id": request.step_id,
    }
