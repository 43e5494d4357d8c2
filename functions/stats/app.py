"""Stats Lambda: counts how journeys end and which states they passed, and marks the
contact's entry ended (`journeys.stats.on_execution_end`).

EventBridge sends it the "Step Functions Execution Status Change" events of the journeys'
state machines (SUCCEEDED, FAILED, TIMED_OUT, ABORTED; see template.yaml). It reads the
execution's history first, then counts in transactions with marker items of the
execution, so an event EventBridge delivers twice, or one Lambda retries after a
throttled history read, counts once. A raised error (throttling) fails the invocation:
Lambda's asynchronous retries finish the work.

Metrics (namespace ``Journeys``, dimension ``workflow``): the ending, as `ENDING_METRICS`
names it, only when this delivery counted it (not for a duplicate, nor for a run that
continues the journey), so CloudWatch shows the same numbers as the statistics.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from journeys import stats
from journeys.metrics import publish as publish_metrics
from journeys.settings import get_settings
from journeys.store import bind_tables

#: The statistic an execution's end counted -> the CloudWatch metric.
ENDING_METRICS = {
    stats.COMPLETED: "JourneyCompleted",
    stats.GOAL: "GoalReached",
    stats.EXITED_METRIC: "JourneyExited",
    stats.FAILED: "JourneyFailed",
}
#: Every metric this function emits (the dashboard test reads it).
METRIC_NAMES = tuple(ENDING_METRICS.values())

logger = Logger()
tracer = Tracer()
# The service warns when a history cannot be read or an entry has no contact.
copy_config_to_registered_loggers(source_logger=logger, include={stats.__name__})


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    bind_tables(settings)
    result = stats.on_execution_end(event, settings.state_machine_arn_prefix)
    detail = event.get("detail") or {}
    logger.info(
        "execution end",
        extra={
            "execution_arn": detail.get("executionArn"),
            "execution_status": detail.get("status"),
            **result.model_dump(),
        },
    )
    ending = ENDING_METRICS.get(result.metric or "")
    if result.status == "counted" and ending and result.workflow_id:
        publish_metrics(result.workflow_id, {ending: 1})
    return result.model_dump()
