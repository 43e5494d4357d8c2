"""Sending messages to the router's queue: the one place that batches and retries.

The API, the SES feedback and the date sweep all enqueue here. SendMessageBatch takes at
most 10 messages and 256 KiB; it may refuse single entries, which are sent again. What
never goes raises `TransientError`: the caller's invocation is retried, and the ids it
had already sent are processed once by the router.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from journeys.exceptions import TransientError

SQS_BATCH_ENTRIES = 10
SQS_BATCH_BYTES = 256 * 1024
SEND_ATTEMPTS = 3

log = logging.getLogger(__name__)


def chunks(bodies: Iterable[str]) -> Iterator[list[str]]:
    """SendMessageBatch-sized groups, in order."""
    group: list[str] = []
    size = 0
    for body in bodies:
        length = len(body.encode("utf-8"))
        if group and (len(group) == SQS_BATCH_ENTRIES or size + length > SQS_BATCH_BYTES):
            yield group
            group, size = [], 0
        group.append(body)
        size += length
    if group:
        yield group


def enqueue(sqs: Any, queue_url: str, bodies: Iterable[str]) -> int:
    """Send every body; return how many were sent."""
    if not queue_url:
        raise RuntimeError("EVENTS_QUEUE_URL is not set: cannot reach the router")
    sent = 0
    for group in chunks(bodies):
        pending = {str(number): body for number, body in enumerate(group)}
        for _ in range(SEND_ATTEMPTS):
            response = sqs.send_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": key, "MessageBody": body} for key, body in pending.items()],
            )
            failed = response.get("Failed") or []
            if not failed:
                pending = {}
                break
            log.warning("SQS refused %d message(s): %s", len(failed), failed)
            pending = {str(entry["Id"]): pending[str(entry["Id"])] for entry in failed}
            if any(entry.get("SenderFault") for entry in failed):
                break  # the message itself is wrong: sending it again cannot help
        if pending:
            raise TransientError(f"could not enqueue {len(pending)} message(s) for the router")
        sent += len(group)
    return sent
