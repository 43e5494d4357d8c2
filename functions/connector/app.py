"""Connector Lambda: `webhook`, `fetch` and ad-audience steps (compiled Tasks calling
${ConnectorFunctionArn}).

For `fetch` the return value is the fetched JSON itself: the state machine stores it at
`$.data.<save_as>`. Responses are not traced (they may be large and hold personal data).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from journeys import connector
from journeys.settings import get_settings
from journeys.store import bind_tables

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    settings = get_settings()
    bind_tables(settings)
    request = connector.parse_request(event)
    logger.append_keys(
        contact_id=request.contact_id,
        workflow_id=request.workflow_id,
        step_id=request.step_id,
        action=request.action,
    )
    return connector.run(request, settings)
