"""The contact as every runtime service sees it, and who can be reached on which channel.

One contact is one DynamoDB item (see template.yaml): typed top-level maps that the
compiled state machines update directly (attributes, tags, lists, segments, channels).
`ContactView` is the read side: plain Python values, built once per Lambda invocation and
passed to the pure services (conditions, scheduling, messaging), which therefore never
touch DynamoDB themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Channel statuses. Only "subscribed" may receive messages.
SUBSCRIBED = "subscribed"
UNSUBSCRIBED = "unsubscribed"
BOUNCED = "bounced"
COMPLAINED = "complained"
CHANNEL_STATUSES = (SUBSCRIBED, UNSUBSCRIBED, BOUNCED, COMPLAINED)


@dataclass(frozen=True, slots=True)
class ChannelState:
    """How to reach a contact on one channel.

    `address` is an email address (email), an E.164 phone number (sms, whatsapp), a device
    token (push), a subscription endpoint (web_push), or an app/site user id (in_app,
    on_site).
    """

    address: str | None
    status: str = SUBSCRIBED


@dataclass(frozen=True, slots=True)
class ContactView:
    contact_id: str
    attributes: Mapping[str, Any] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)  # tag -> ISO time added
    segments: Mapping[str, str] = field(default_factory=dict)  # segment -> ISO time entered
    lists: Mapping[str, str] = field(default_factory=dict)  # list -> subscribed/unsubscribed
    channels: Mapping[str, ChannelState] = field(default_factory=dict)
    time_zone: str | None = None  # IANA name, e.g. Europe/Paris

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> ContactView:
        """From a contact item as plain values (pynamodb's `attribute_values` or
        boto3's TypeDeserializer output); numbers may arrive as Decimal."""
        channels = {
            name: ChannelState(
                address=(value or {}).get("address"),
                status=(value or {}).get("status", SUBSCRIBED),
            )
            for name, value in (item.get("channels") or {}).items()
        }
        return cls(
            contact_id=str(item["contact_id"]),
            attributes=dict(item.get("attributes") or {}),
            tags=dict(item.get("tags") or {}),
            segments=dict(item.get("segments") or {}),
            lists=dict(item.get("lists") or {}),
            channels=channels,
            time_zone=item.get("time_zone"),
        )


def is_reachable(contact: ContactView, channel: str) -> bool:
    """The contact can receive messages on `channel`: an address and consent, not bounced,
    complained or unsubscribed. The one rule both `reachable:` conditions and sends use."""
    state = contact.channels.get(channel)
    return state is not None and bool(state.address) and state.status == SUBSCRIBED


def address_for(contact: ContactView, channel: str, to_attribute: str | None = None) -> str | None:
    """Where a message goes: the channel's address, or the one in `to_attribute` (a parent,
    an owner). A recipient named by attribute has no consent record of their own here."""
    if to_attribute:
        value = contact.attributes.get(to_attribute)
        return str(value) if value else None
    state = contact.channels.get(channel)
    return state.address if state is not None else None
