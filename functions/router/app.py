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
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from journeys import router
from journeys.settings import get_settings

NAMESPACE = "Journeys"
WORKFLOW_ENTERED = "WorkflowEntered"
#: Every metric this function emits (the dashboard test reads it).
METRIC_NAMES = (WORKFLOW_ENTERED,)

logger = Logger()
tracer = Tracer()
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def publish_metrics(workflow_id: str | None, counts: Mapping[str, int]) -> None:
    """One metric set for one workflow (None: the function's own, without the dimension),
    flushed now. A set of its own per call because Powertools' `Metrics` shares one
    dimension set per process: a second workflow would overwrite the first ("Dimension
    'workflow' has already been added"), and the set is never cleared while
    POWERTOOLS_METRICS_DISABLED is set (the local stack). Metrics never fail the handler."""
    if not any(counts.values()):
        return
    try:
        metric_set = EphemeralMetrics(namespace=NAMESPACE)
        if workflow_id:
            metric_set.add_dimension(name="workflow", value=workflow_id)
        for name, value in counts.items():
            if value:
                metric_set.add_metric(name=name, unit=MetricUnit.Count, value=value)
        metric_set.flush_metrics()
    except Exception:
        logger.warning("metrics not published", extra={"workflow_id": workflow_id}, exc_info=True)


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
