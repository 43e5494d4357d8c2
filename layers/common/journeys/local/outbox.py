"""The outbox: every message and HTTP call the local stack's journeys made.

On AWS, email leaves through SES, SMS and push through SNS, and webhooks over the
internet. Locally they stop at moto, which keeps what it was asked to send (the whole
MIME message, the SMS text, the push payload). The outbox joins that content with who
asked: it watches the send and connector functions' invocations (contact, workflow,
step, channel, the message id SES or SNS answered) and reads the content from moto by
that id. So every entry says what was sent to whom, and which workflow step sent it.

Messages a step decided not to send (consent, frequency cap, quiet hours deferral) are
not in the outbox; the execution history shows those decisions.
"""

from __future__ import annotations

import email
import email.policy
import itertools
import json
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from typing import Any

from journeys import clock
from journeys.local.functions import Invocation

__all__ = ["Outbox", "OutboxEntry"]

ACCOUNT = "123456789012"


@dataclass(frozen=True)
class OutboxEntry:
    sequence: int
    at: str
    channel: str  # email | sms | push | team | webhook | fetch | audience
    to: str
    contact_id: str
    workflow_id: str
    step_id: str
    step_label: str
    subject: str | None
    body: str
    message_id: str | None
    status: str  # sent | failed: <error>

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Outbox:
    """Collects `OutboxEntry`s from the invocations the stack reports (`observe`)."""

    def __init__(self, send_function: str, connector_function: str, region: str) -> None:
        self._send = send_function
        self._connector = connector_function
        self._region = region
        self._entries: list[OutboxEntry] = []
        self._lock = threading.Lock()
        self._sequence = itertools.count(1)
        self._changed = threading.Condition(self._lock)

    def observe(self, invocation: Invocation) -> None:
        name = invocation.function.name
        if name == self._send:
            entry = self._from_send(invocation)
        elif name == self._connector:
            entry = self._from_connector(invocation)
        else:
            return
        if entry is not None:
            with self._changed:
                self._entries.append(entry)
                self._changed.notify_all()

    def entries(
        self,
        *,
        contact_id: str | None = None,
        workflow_id: str | None = None,
        after: int = 0,
    ) -> list[OutboxEntry]:
        with self._lock:
            return [
                e
                for e in self._entries
                if e.sequence > after
                and (contact_id is None or e.contact_id == contact_id)
                and (workflow_id is None or e.workflow_id == workflow_id)
            ]

    def wait_for(
        self, count: int, timeout: float, *, contact_id: str | None = None
    ) -> list[OutboxEntry]:
        """Block until the outbox holds `count` entries (of the contact); return them."""
        with self._changed:
            self._changed.wait_for(
                lambda: (
                    len(
                        [
                            e
                            for e in self._entries
                            if contact_id is None or e.contact_id == contact_id
                        ]
                    )
                    >= count
                ),
                timeout,
            )
        return self.entries(contact_id=contact_id)

    # --- building entries ----------------------------------------------------------------

    def _base(self, invocation: Invocation) -> dict[str, Any]:
        event = invocation.event if isinstance(invocation.event, Mapping) else {}
        return {
            "sequence": next(self._sequence),
            "at": clock.now().isoformat().replace("+00:00", "Z"),
            "contact_id": str(event.get("contact_id", "")),
            "workflow_id": str(event.get("workflow_id", "")),
            "step_id": str(event.get("step_id", "")),
            "step_label": str(event.get("step_label", "")),
        }

    def _from_send(self, invocation: Invocation) -> OutboxEntry | None:
        result = invocation.result
        if invocation.errored or not isinstance(result, Mapping) or result.get("status") != "sent":
            return None
        message_id = str(result.get("message_id", ""))
        channel = str(result.get("channel", ""))
        to, subject, body = self._content(channel, message_id)
        return OutboxEntry(
            **self._base(invocation),
            channel=channel,
            to=to,
            subject=subject,
            body=body,
            message_id=message_id,
            status="sent",
        )

    def _from_connector(self, invocation: Invocation) -> OutboxEntry | None:
        event = invocation.event if isinstance(invocation.event, Mapping) else {}
        action = str(event.get("action", "webhook"))
        channel = {"add_to_audience": "audience", "remove_from_audience": "audience"}.get(
            action, action
        )
        status = "sent"
        if invocation.errored and isinstance(invocation.result, Mapping):
            status = f"failed: {invocation.result.get('errorType')}: " + str(
                invocation.result.get("errorMessage", "")
            )
        if channel == "audience":  # posted to AUDIENCE_WEBHOOK_URL: name what changed
            verb = "add to" if action == "add_to_audience" else "remove from"
            target = f"{verb} {event.get('network', '')} audience {event.get('audience', '')}"
        else:
            target = f"{event.get('method', 'POST')} {event.get('url', '')}".strip()
        return OutboxEntry(
            **self._base(invocation),
            channel=channel,
            to=target,
            subject=action,
            body=_short(event.get("body")),
            message_id=None,
            status=status,
        )

    def _content(self, channel: str, message_id: str) -> tuple[str, str | None, str]:
        """(recipient, subject, text) of a message moto recorded."""
        if channel in ("email", "team"):
            from moto.ses.models import ses_backends

            for message in ses_backends[ACCOUNT][self._region].sent_messages:
                if getattr(message, "id", None) == message_id and hasattr(message, "raw_data"):
                    return _email_content(str(message.raw_data), list(message.destinations))
        elif channel == "sms":
            from moto.sns.models import sns_backends

            phone, text = sns_backends[ACCOUNT][self._region].sms_messages.get(message_id, ("", ""))
            return str(phone), None, str(text)
        elif channel == "push":
            from moto.sns.models import sns_backends

            backend = sns_backends[ACCOUNT][self._region]
            for arn, endpoint in backend.platform_endpoints.items():
                if message_id in endpoint.messages:
                    return str(arn), None, _push_text(str(endpoint.messages[message_id]))
        return "", None, ""


def _email_content(raw: str, destinations: list[str]) -> tuple[str, str | None, str]:
    message = email.message_from_string(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    part = message.get_body(preferencelist=("plain", "html"))
    text = part.get_content() if part is not None else ""
    return (
        str(message.get("To") or ", ".join(destinations)),
        str(message.get("Subject") or ""),
        str(text).strip(),
    )


def _push_text(message: str) -> str:
    """The readable text of an SNS push (MessageStructure json: the `default` entry)."""
    try:
        structured = json.loads(message)
    except json.JSONDecodeError:
        return message
    if isinstance(structured, dict) and isinstance(structured.get("default"), str):
        return str(structured["default"])
    return message


def _short(value: Any, limit: int = 2000) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + "…"
