"""Stats Lambda: counts how journeys end (`journeys.stats.on_execution_end`).

EventBridge sends it the "Step Functions Execution Status Change" events of the journeys'
state machines (SUCCEEDED, FAILED, TIMED_OUT, ABORTED; see template.yaml). Each end is
counted once, even when EventBridge delivers an event twice or Lambda retries it: the
counters change in one transaction with a marker item of the execution.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from journeys import stats
from journeys.settings import get_settings
from journeys.store import bind_tables

logger = Logger()
tracer = Tracer()


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
    return result.model_dump()
