"""Schedule Lambda: time-zone and calendar maths (compiled Task "Schedule: <label>", and
set_attribute with shift)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from journeys import steps
from journeys.settings import get_settings
from journeys.store import bind_tables

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    bind_tables(get_settings())
    request = steps.ScheduleRequest.model_validate(event)
    logger.append_keys(
        contact_id=request.contact_id,
        workflow_id=request.workflow_id,
        step_id=request.step_id,
        action=request.action,
    )
    return steps.schedule(request)
