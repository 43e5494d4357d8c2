"""Runtime settings of the Lambda functions, read from the environment when asked.

Nothing here runs at import: handlers call `get_settings()` inside the invocation, so the
shared package can be imported by the CLI, tests and every function without a deployment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache


class MissingSetting(KeyError):
    """An environment variable a function needs is not set (check template.yaml)."""


@dataclass(frozen=True)
class Settings:
    region: str
    contacts_table: str
    events_table: str
    messages_table: str
    waits_table: str
    entries_table: str
    sender: str = ""
    configuration_set: str | None = None
    public_base_url: str = ""
    link_secret: bytes = b""
    #: Only for the local stack: where DynamoDB answers (None on AWS).
    dynamodb_endpoint: str | None = None
    #: Message templates shipped with the send function (workflows/templates).
    templates_dir: str = "templates"
    #: SNS platform application for raw push device tokens (endpoint ARNs need none).
    push_application_arn: str | None = None
    #: Intake -> router queue.
    events_queue_url: str = ""
    #: State machine ARN = prefix + workflow id (e.g. arn:aws:states:...:stateMachine:journeys-).
    state_machine_arn_prefix: str = ""
    #: The index `journeys compile` writes (state_machines/index.json), shipped with the router.
    workflow_index: str = "index.json"
    #: Where ad-audience changes are posted (your connector to Facebook/Google/...).
    audience_webhook_url: str = ""
    #: Send every webhook, fetch and audience call here instead (the local stack's sandbox;
    #: a staging deployment could point it at a request inspector). Empty: the real URLs.
    http_sandbox_url: str = ""
    #: Workflow statistics (journeys.stats); empty: statistics are not recorded.
    stats_table: str = ""
    #: CSV imports (journeys.imports): their counters, the bucket the validated files go
    #: to, and the state machine that imports them. Empty: imports are not deployed.
    imports_table: str = ""
    imports_bucket: str = ""
    import_state_machine_arn: str = ""
    #: How long the statistics API reuses where the running journeys are (one execution
    #: history read each, at most 100): dashboards poll every 2 s, and Step Functions
    #: refills GetExecutionHistory at a few requests a second. 0: read every time.
    positions_max_age: float = 0.0
    #: Where every AWS request goes instead of AWS (the local stack's moto); executions
    #: there have no page in the AWS console.
    aws_endpoint_url: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def need(name: str) -> str:
            try:
                return env[name]
            except KeyError:
                raise MissingSetting(f"environment variable {name} is not set") from None

        return cls(
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            contacts_table=need("CONTACTS_TABLE"),
            events_table=need("EVENTS_TABLE"),
            messages_table=need("MESSAGES_TABLE"),
            waits_table=need("WAITS_TABLE"),
            entries_table=need("ENTRIES_TABLE"),
            sender=env.get("SENDER_ADDRESS", ""),
            configuration_set=env.get("SES_CONFIGURATION_SET") or None,
            public_base_url=env.get("PUBLIC_BASE_URL", "").rstrip("/"),
            link_secret=env.get("LINK_SECRET", "").encode(),
            dynamodb_endpoint=env.get("DYNAMODB_ENDPOINT") or None,
            templates_dir=env.get("TEMPLATES_DIR", "templates"),
            push_application_arn=env.get("PUSH_APPLICATION_ARN") or None,
            events_queue_url=env.get("EVENTS_QUEUE_URL", ""),
            state_machine_arn_prefix=env.get("STATE_MACHINE_ARN_PREFIX", ""),
            workflow_index=env.get("WORKFLOW_INDEX", "index.json"),
            audience_webhook_url=env.get("AUDIENCE_WEBHOOK_URL", ""),
            http_sandbox_url=env.get("HTTP_SANDBOX_URL", "").rstrip("/"),
            stats_table=env.get("STATS_TABLE", ""),
            imports_table=env.get("IMPORTS_TABLE", ""),
            imports_bucket=env.get("IMPORTS_BUCKET", ""),
            import_state_machine_arn=env.get("IMPORT_STATE_MACHINE_ARN", ""),
            positions_max_age=float(env.get("POSITIONS_MAX_AGE_SECONDS") or 0),
            aws_endpoint_url=env.get("AWS_ENDPOINT_URL", ""),
        )


@cache
def get_settings() -> Settings:
    return Settings.from_env()
