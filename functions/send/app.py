"""Send Lambda: every message a journey sends (compiled send and notify_team Tasks).

Idempotent per attempt (execution, step, time the state was entered): a Lambda retry
never sends twice, while a deferred send or a loop round is a new attempt.

Metrics (namespace ``Journeys``, dimension ``workflow``): `MESSAGES_SENT` and
`MESSAGES_SKIPPED`, counted where the step's statistics are (team alerts are not the
contact's messages), inside the idempotent function, so a replayed attempt counts once.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from journeys import steps
from journeys.metrics import publish as publish_metrics
from journeys.settings import get_settings
from journeys.store import bind_tables

MESSAGES_SENT = "MessagesSent"
MESSAGES_SKIPPED = "MessagesSkipped"
#: Every metric this function emits (the dashboard test reads it).
METRIC_NAMES = (MESSAGES_SENT, MESSAGES_SKIPPED)
_BY_STATUS = {"sent": MESSAGES_SENT, "skipped": MESSAGES_SKIPPED}

logger = Logger()
tracer = Tracer()
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
    result = steps.send(request, get_settings())
    metric = _BY_STATUS.get(str(result.get("status")))
    if metric and request.workflow_id and request.channel != "team":
        publish_metrics(request.workflow_id, {metric: 1})
    return result


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    bind_tables(get_settings())
    idempotency.register_lambda_context(context)
    return send_once(event=event)
