"""Feedback Lambda: SES events (open, click, bounce, complaint, delivery) arriving through
the configuration set's SNS topic (`journeys.feedback`).

Each SNS record's `Message` is one SES event record. Deliveries are written to the
message and counted in the step's statistics; opens and clicks are written to the message
and become router events; hard bounces and complaints suppress the contact's email
channel. Handling is idempotent per SES event, so SNS redeliveries and the Lambda's
own retries of an asynchronous invocation are harmless. A record that cannot be handled
(malformed, throttled) fails the invocation after the others are done: Lambda retries it
and then hands it to the function's on-failure destination.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import SNSEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from journeys import aws, feedback
from journeys.settings import get_settings
from journeys.store import bind_tables

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="Journeys")
# The service logs why it skipped an event (unknown contact, another address) at INFO.
copy_config_to_registered_loggers(source_logger=logger, include={feedback.__name__})


def _sqs(region: str) -> Any:
    return aws.client("sqs", region)


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@event_source(data_class=SNSEvent)
def handler(event: SNSEvent, context: LambdaContext) -> list[dict[str, Any]]:
    settings = get_settings()
    bind_tables(settings)
    sqs = _sqs(settings.region)
    outcomes: list[dict[str, Any]] = []
    failure: Exception | None = None
    for record in event.records:
        sns_id = record.sns.message_id
        try:
            parsed = feedback.parse_event(record.sns.message)
            metrics.add_metric(
                name="Email" + parsed.event_type.replace(" ", ""), unit=MetricUnit.Count, value=1
            )
            outcome = feedback.handle(parsed, settings, sqs=sqs)
        except Exception as error:
            logger.exception("SES feedback failed", extra={"sns_message_id": sns_id})
            failure = failure or error
            continue
        if outcome.action == "skipped":
            metrics.add_metric(name="FeedbackSkipped", unit=MetricUnit.Count, value=1)
        logger.info("SES feedback", extra={"sns_message_id": sns_id, **outcome.summary()})
        outcomes.append(outcome.summary())
    if failure is not None:
        raise failure
    return outcomes
