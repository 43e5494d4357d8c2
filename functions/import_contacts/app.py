"""Import Lambda: one batch of a contact file, as the import state machine's Distributed
Map hands it over (``{"Items": [row, ...], "BatchInput": {"import_id", "workflow_id"}}``).

Every row's contact is created or updated and, with a workflow, entered into it
(`journeys.imports.import_batch`). Rows that cannot be imported are counted and logged;
`TransientError` (throttling, a dependency down) fails the invocation so the state machine
retries the batch, which is safe: a counted batch is skipped and every journey has a
deterministic execution name.

Metrics (namespace ``Journeys``, dimension ``workflow``): `WORKFLOW_ENTERED`, the
journeys the batch started, once per batch (a batch counted before emits nothing). The
import routes in process, so the router function never sees these entries.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from journeys import clock, imports
from journeys.metrics import publish as publish_metrics
from journeys.settings import get_settings

WORKFLOW_ENTERED = "WorkflowEntered"
#: Every metric this function emits (the dashboard test reads it).
METRIC_NAMES = (WORKFLOW_ENTERED,)

logger = Logger()
tracer = Tracer()
copy_config_to_registered_loggers(source_logger=logger, include={imports.__name__})


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    batch_input = event.get("BatchInput") or {}
    logger.append_keys(import_id=batch_input.get("import_id"))
    counts = imports.import_batch(event, get_settings(), now=clock.now())
    summary = counts.summary()
    logger.info("batch imported", extra=summary)
    workflow_id = batch_input.get("workflow_id")
    if workflow_id and not counts.duplicate:
        publish_metrics(str(workflow_id), {WORKFLOW_ENTERED: counts.started})
    return summary
