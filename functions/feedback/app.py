"""Feedback Lambda: SES events (open, click, bounce, complaint, delivery) arriving through
the configuration set's SNS topic (`journeys.feedback`).

Each SNS record's `Message` is one SES event record. Deliveries are written to the
message and counted in the step's statistics; opens and clicks are written to the message
and become router events; hard bounces and complaints suppress the contact's email
channel. Handling is idempotent per SES event, so SNS redeliveries and the Lambda's
own retries of an asynchronous invocation are harmless. A record that cannot be handled
(malformed, throttled) fails the invocation after the others are done: Lambda retries it
and then hands it to the function's on-failure destination.

Metrics (namespace ``Journeys``): per workflow (dimension ``workflow``, from the email's
tags) `DELIVERED`, `OPENED`, `CLICKED`, `BOUNCED`, `COMPLAINED` and `UNSUBSCRIBED`, from
what each event did (`counted_metrics`), so a redelivered event counts nothing; and, for
the function itself, `FEEDBACK_SKIPPED`: events that named no contact or message of ours.
One metric set per workflow, after every record is handled.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.data_classes import SNSEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from journeys import aws, feedback
from journeys.contacts import SUBSCRIBED
from journeys.metrics import publish as publish_metrics
from journeys.settings import get_settings
from journeys.store import bind_tables

DELIVERED = "Delivered"
OPENED = "Opened"
CLICKED = "Clicked"
BOUNCED = "Bounced"
COMPLAINED = "Complained"
UNSUBSCRIBED = "Unsubscribed"
FEEDBACK_SKIPPED = "FeedbackSkipped"
#: Every metric this function emits (the dashboard test reads it).
METRIC_NAMES = (DELIVERED, OPENED, CLICKED, BOUNCED, COMPLAINED, UNSUBSCRIBED, FEEDBACK_SKIPPED)

logger = Logger()
tracer = Tracer()
# The service logs why it skipped an event (unknown contact, another address) at INFO.
copy_config_to_registered_loggers(source_logger=logger, include={feedback.__name__})


def _sqs(region: str) -> Any:
    return aws.client("sqs", region)


def counted_metrics(outcome: feedback.Outcome) -> list[str]:
    """The workflow metrics one handled event adds, as the service counted it in the
    statistics: a first delivery or open, a bounce or complaint that changed the channel,
    and the unsubscribe a complaint of a subscribed channel makes. Clicks count every link
    clicked for the first time: the statistics count a message's first click only, which
    `Outcome` does not tell apart yet."""
    if outcome.action == "delivered":
        return [DELIVERED]
    if outcome.action == "opened":
        return [OPENED]
    if outcome.action == "clicked":
        return [CLICKED]
    if outcome.action == "bounced" and outcome.status_changed:
        return [BOUNCED]
    if outcome.action == "complained" and outcome.status_changed:
        unsubscribed = outcome.extra.get("was") == SUBSCRIBED
        return [COMPLAINED, UNSUBSCRIBED] if unsubscribed else [COMPLAINED]
    return []


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@event_source(data_class=SNSEvent)
def handler(event: SNSEvent, context: LambdaContext) -> list[dict[str, Any]]:
    settings = get_settings()
    bind_tables(settings)
    sqs = _sqs(settings.region)
    outcomes: list[dict[str, Any]] = []
    per_workflow: dict[str, Counter[str]] = {}
    skipped = 0
    failure: Exception | None = None
    for record in event.records:
        sns_id = record.sns.message_id
        try:
            parsed = feedback.parse_event(record.sns.message)
            outcome = feedback.handle(parsed, settings, sqs=sqs)
        except Exception as error:
            logger.exception("SES feedback failed", extra={"sns_message_id": sns_id})
            failure = failure or error
            continue
        if outcome.action == "skipped":
            skipped += 1
        workflow_id = parsed.mail.tag("workflow_id")
        if workflow_id:
            per_workflow.setdefault(workflow_id, Counter()).update(counted_metrics(outcome))
        logger.info("SES feedback", extra={"sns_message_id": sns_id, **outcome.summary()})
        outcomes.append(outcome.summary())
    for workflow_id, counts in sorted(per_workflow.items()):
        publish_metrics(workflow_id, counts)
    publish_metrics(None, {FEEDBACK_SKIPPED: skipped})
    if failure is not None:
        raise failure
    return outcomes
