"""Send Lambda: every message a journey sends (compiled send and notify_team Tasks).

Idempotent per attempt (execution, step, time the state was entered): a Lambda retry
never sends twice, while a deferred send or a loop round is a new attempt.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from journeys import steps
from journeys.settings import get_settings
from journeys.store import bind_tables

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="Journeys")
idempotency = IdempotencyConfig(
    event_key_jmespath="[execution_id, step_id, state_entered_at]",
    raise_on_no_idempotency_key=False,
    expires_after_seconds=7 * 86400,
)
persistence = DynamoDBPersistenceLayer(table_name=os.environ["IDEMPOTENCY_TABLE"])


@idempotent_function(
    data_keyword_argument="event", config=idempotency, persistence_store=persistence
)
def send_once(event: dict[str, Any]) -> dict[str, Any]:
    request = steps.SendStepRequest.model_validate(event)
    logger.append_keys(
        contact_id=request.contact_id,
        workflow_id=request.workflow_id,
        step_id=request.step_id,
        channel=request.channel,
    )
    return steps.send(request, get_settings())


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    bind_tables(get_settings())
    idempotency.register_lambda_context(context)
    result = send_once(event=event)
    metrics.add_dimension(name="workflow", value=str(event.get("workflow_id", "")))
    metrics.add_metric(name=f"Messages{result['status'].title()}", unit=MetricUnit.Count, value=1)
    return result
