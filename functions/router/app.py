"""Router Lambda: consumes the events queue (intake events, contact changes, start_workflow
hand-offs), releases waits and starts journeys (`journeys.router`).

Each SQS record is routed on its own; a record that fails (a malformed body, throttling, a
state machine that does not exist) is reported in `batchItemFailures`, so only it comes
back after the visibility timeout, and after `maxReceiveCount` it goes to the dead-letter
queue. Routing is idempotent per message, so a retried record finishes what is left.

Metrics (namespace ``Journeys``, dimension ``workflow``): `WORKFLOW_ENTERED`, one per
execution this batch started (`Start.status` "started", exactly where the statistics count
`entered`; an execution that already existed was counted when it started). One metric set
per workflow, after the batch.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from journeys import router
from journeys.metrics import publish as publish_metrics
from journeys.settings import get_settings

WORKFLOW_ENTERED = "WorkflowEntered"
#: Every metric this function emits (the dashboard test reads it).
METRIC_NAMES = (WORKFLOW_ENTERED,)

logger = Logger()
tracer = Tracer()
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    router.bind(settings)
    index = router.load_index(settings.workflow_index)
    sfn = router.stepfunctions_client(settings)
    entered: Counter[str] = Counter()

    @tracer.capture_method
    def route_record(record: SQSRecord) -> dict[str, Any]:
        try:
            message = router.parse_message(record.body)
        except router.InvalidMessage:
            logger.exception("invalid message", extra={"message_id": record.message_id})
            raise
        keys = {"contact_id": message.contact_id, "event_id": message.event_id}
        logger.append_keys(**keys, message_type=message.type)
        try:
            outcome = router.route(message, index, settings, sfn=sfn)
            logger.info("routed", extra=outcome.summary())
            entered.update(s.workflow_id for s in outcome.starts if s.status == "started")
            return outcome.summary()
        except Exception:
            logger.exception("routing failed", extra={"message_id": record.message_id})
            raise
        finally:
            logger.remove_keys([*keys, "message_type"])

    try:
        return process_partial_response(
            event=event, record_handler=route_record, processor=processor, context=context
        )
    finally:
        for workflow_id, count in sorted(entered.items()):
            publish_metrics(workflow_id, {WORKFLOW_ENTERED: count})
