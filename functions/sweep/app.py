"""Sweep Lambda: an hourly EventBridge schedule starts the journeys of date triggers
(birthdays, anniversaries, N days before a due date) through `journeys.sweeps`.

Each run scans the contacts and enqueues an ``enter_workflow`` message on the events queue
for every occurrence in the coming hour; the router applies re-entry rules and starts the
journeys. Event ids are deterministic per occurrence, so a retried or repeated run is
harmless: the router deduplicates.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from journeys import aws, clock, sweeps
from journeys.settings import get_settings
from journeys.store import bind_tables

logger = Logger()
tracer = Tracer()
copy_config_to_registered_loggers(source_logger=logger, include={sweeps.__name__})


def _sqs(region: str) -> Any:
    return aws.client("sqs", region)


def _scheduled_time(event: Any) -> datetime:
    """The time the schedule fired (EventBridge's `time`), so a retried invocation sweeps
    the same window; now when the event carries none."""
    text = event.get("time") if isinstance(event, dict) else None
    if isinstance(text, str):
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            return moment.astimezone(UTC)
    return clock.now()


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    settings = get_settings()
    bind_tables(settings)
    enqueued = sweeps.sweep(settings, now=_scheduled_time(event), sqs=_sqs(settings.region))
    logger.info("date-trigger sweep done", extra={"enqueued": enqueued})
    return {"enqueued": enqueued}
