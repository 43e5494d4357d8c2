"""Workflow metrics for CloudWatch (Powertools, embedded metric format): namespace
``Journeys``, dimension ``workflow``, shown on the stack's CloudWatch dashboard.

Each call publishes one metric set of its own and flushes it at once, because Powertools'
`Metrics` shares one dimension set per process: a second workflow in the same invocation
would overwrite the first ("Dimension 'workflow' has already been added"), and the set is
never cleared while POWERTOOLS_METRICS_DISABLED is set (the local stack, where every
function shares one process). Metrics never fail a handler.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

NAMESPACE = "Journeys"

log = logging.getLogger(__name__)


def publish(workflow_id: str | None, counts: Mapping[str, int]) -> None:
    """Counts (metric name -> count) for one workflow, or, with None, for the function
    itself (no workflow dimension). Zero counts are left out; nothing at all, no set."""
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
        log.warning("metrics of workflow %s not published", workflow_id, exc_info=True)
