"""Wait-for-event Lambda: parks a task token until the contact's event (wait_for_event
steps, goal and exit watches). Invoked with .waitForTaskToken; returns nothing useful."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from journeys import waits
from journeys.settings import get_settings
from journeys.store import bind_tables

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, bool]:
    bind_tables(get_settings())
    request = waits.WaitRequest.model_validate(event)
    logger.append_keys(
        contact_id=request.contact_id, workflow_id=request.workflow_id, signal=request.signal
    )
    return {"resolved_at_once": waits.register(request)}
