"""The local stack: the whole product on one machine, no AWS account, no Docker.

`LocalStack` brings up, in this process:

1. moto's server on 127.0.0.1 with its Step Functions interpreter switched on, patched by
   `journeys.local.engine` so Lambda Task states run the project's handlers here and every
   clock follows the stack's time scale;
2. the resources of template.yaml and of the compiled state machines' nested stack,
   deployed by `journeys.local.resources` (the same names the handlers get on AWS);
3. what AWS would do between resources: the SQS event source mapping of the router
   (batches, partial failures, redrive to the dead-letter queue), EventBridge's
   execution-status events to the statistics function, the hourly sweep schedule, SNS
   topics invoking their subscribed functions;
4. the API on 127.0.0.1, translated by `journeys.local.gateway` exactly as API Gateway
   does, with an API key;
5. an HTTP sandbox (`journeys.local.sandbox`) that webhooks and fetches reach instead of
   the internet, answering from `demo/http/`;
6. the outbox (`journeys.local.outbox`): everything sent, with the step that sent it.

Every AWS SDK call the handlers make goes to the moto server through
`AWS_ENDPOINT_URL`, so the code paths are the deployed ones; the AWS CLI and boto3 work
against `LocalStack.endpoint` too.

Time: `time_scale` seconds of journey time pass per real second (86400: a day a second).
The scale applies to waits, wait-for-event timeouts, the clock handlers read
(`journeys.clock`) and the schedules; the time the code itself takes is real, so with a
large scale a few milliseconds of work are minutes of journey time.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import queue
import secrets
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode

from journeys import clock as journeys_clock
from journeys.local import engine
from journeys.local.functions import FunctionHost, Invocation
from journeys.local.outbox import Outbox
from journeys.local.resources import Deployment, FunctionSpec, deploy
from journeys.local.sandbox import HttpSandbox

__all__ = ["LocalStack", "StackPaths", "event_pattern_matches", "rate_seconds"]

logger = logging.getLogger("journeys.local")

REGION = "us-east-1"
_CATCH_UP_RUNS = 48  # scheduled runs replayed at most after the clock jumps ahead
STAGE = "local"
_ENV_KEYS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "MOTO_PORT",
)


@dataclass(frozen=True)
class StackPaths:
    """Where the stack finds the project: the template, compiled machines, templates."""

    root: Path

    @property
    def template(self) -> Path:
        return self.root / "template.yaml"

    @property
    def state_machines(self) -> Path:
        return self.root / "state_machines"

    @property
    def message_templates(self) -> Path:
        return self.root / "workflows" / "templates"

    @property
    def workflow_index(self) -> Path:
        return self.state_machines / "index.json"

    @property
    def dashboard(self) -> Path:
        return self.root / "dashboard"


def rate_seconds(expression: str) -> float:
    """Seconds between runs of an EventBridge `rate(...)` expression."""
    text = expression.strip()
    if not (text.startswith("rate(") and text.endswith(")")):
        raise ValueError(f"only rate(...) schedules run locally (got {expression!r})")
    amount, unit = text[5:-1].split()
    seconds = {"minute": 60, "hour": 3600, "day": 86400}[unit.rstrip("s")]
    return int(amount) * seconds


def event_pattern_matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """EventBridge content filtering for the forms templates use: value lists, nested
    objects, `{"prefix": ...}`."""
    for key, wanted in pattern.items():
        value = event.get(key)
        if isinstance(wanted, Mapping):
            if not isinstance(value, Mapping) or not event_pattern_matches(wanted, value):
                return False
            continue
        options = wanted if isinstance(wanted, list) else [wanted]
        if not any(_matches_one(option, value) for option in options):
            return False
    return True


def _matches_one(option: Any, value: Any) -> bool:
    if isinstance(option, Mapping):
        if "prefix" in option:
            return isinstance(value, str) and value.startswith(str(option["prefix"]))
        if "exists" in option:
            return (value is not None) == bool(option["exists"])
        return False
    return bool(option == value)


def _check_free(port: int) -> None:
    """moto's server thread would hang on a port in use instead of failing: check first."""
    if not port:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Connections of a stack stopped a moment ago linger in TIME_WAIT: not "in use".
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise OSError(f"port {port} on 127.0.0.1 is in use ({error.strerror})") from None


def _epoch_ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


@dataclass
class _Worker:
    thread: threading.Thread
    name: str


@dataclass
class LocalStack:
    """Start with `start()` (or `with LocalStack(...) as stack:`), stop with `stop()`."""

    root: Path
    time_scale: float = 1.0
    port: int = 0
    api_port: int = 0
    api_key: str = field(default_factory=lambda: "local-" + secrets.token_hex(8))
    progress: Callable[[str], None] = field(default=lambda message: None)
    quiet: bool = False  # handlers log warnings only and print no metrics
    start_time: datetime | None = None  # where journey time starts (default: now)
    schedules: bool = True  # run the template's schedules (tests call the sweep themselves)

    deployment: Deployment | None = field(default=None, init=False)
    host: FunctionHost | None = field(default=None, init=False)
    outbox: Outbox | None = field(default=None, init=False)
    endpoint: str = field(default="", init=False)
    api_url: str = field(default="", init=False)

    def __post_init__(self) -> None:
        self.paths = StackPaths(self.root)
        self._stopping = threading.Event()
        self._workers: list[_Worker] = []
        self._server: Any = None
        self._api: Any = None
        self._sandbox: HttpSandbox | None = None
        self._saved_env: dict[str, str | None] = {}
        self._previous_clock: journeys_clock.Clock | None = None
        self._ends: queue.Queue[engine.ExecutionEnd | None] = queue.Queue()
        self._observers: list[Callable[[Invocation], None]] = []

    # --- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        from moto.core.config import default_user_config
        from moto.server import ThreadedMotoServer

        default_user_config["stepfunctions"]["execute_state_machine"] = True
        # moto logs every caught Fail state (goal reached, journey ended) as an ERROR with
        # the whole state machine: journeys end that way by design.
        logging.getLogger("moto.stepfunctions.parser.asl.component.eval_component").setLevel(
            logging.CRITICAL
        )
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.clock = journeys_clock.ScaledClock(self.time_scale, self.start_time)
        self._previous_clock = journeys_clock.install(self.clock)

        for port in (self.port, self.api_port):
            _check_free(port)
        self.progress("starting the AWS endpoint (moto) on 127.0.0.1")
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self._set_env(
            {
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "AWS_ENDPOINT_URL": self.endpoint,
                "MOTO_PORT": str(port),  # where moto's engine sends its own SDK calls
            }
        )
        self._set_env({"AWS_SESSION_TOKEN": None})
        engine.install(self._run_lambda, self._ends.put)

        self.progress("deploying template.yaml and the compiled state machines")
        # Mobile push needs a platform application (FCM/APNs credentials on AWS).
        push_application = self.client("sns").create_platform_application(
            Name=f"journeys-{STAGE}-push",
            Platform="GCM",
            Attributes={"PlatformCredential": "local"},
        )["PlatformApplicationArn"]
        self.deployment = deploy(
            self.paths.template,
            self.client,
            stage=STAGE,
            region=REGION,
            parameters={"PushApplicationArn": push_application},
            progress=self.progress,
        )
        self._sandbox = HttpSandbox(self.root / "demo" / "http").start()
        self._set_env(self._function_environment(self.deployment))
        from journeys import aws, store
        from journeys.settings import get_settings

        get_settings.cache_clear()
        # Connections made for this stack point at its endpoint, gone now.
        store.forget_connections()
        aws.clear_clients()
        self.host = FunctionHost(self.deployment.functions)
        self.outbox = Outbox(
            self.deployment.functions["SendFunction"].name,
            self.deployment.functions["ConnectorFunction"].name,
            REGION,
        )
        self.host.observe(self.outbox.observe)
        for observer in self._observers:
            self.host.observe(observer)

        self._wire_event_sources(self.deployment)
        self._start_api(self.deployment)

    def stop(self) -> None:
        self._stopping.set()
        self._ends.put(None)
        if self._api is not None:
            self._api.stop()
            self._api = None
        self._stop_executions()
        for worker in self._workers:
            worker.thread.join(timeout=5)
        self._workers.clear()
        if engine.installed():
            engine.uninstall()
        if self.host is not None:
            self.host.close()
        if self._sandbox is not None:
            self._sandbox.stop()
            self._sandbox = None
        if self._server is not None:
            self._server.stop()
            self._server = None
            # moto's backends live in this process, not in the server: the next stack
            # (another test tier, a restart) starts from nothing, as a new account would.
            from moto.moto_api._internal.models import moto_api_backend

            moto_api_backend.reset()
        if self._previous_clock is not None:
            journeys_clock.install(self._previous_clock)
            self._previous_clock = None
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        from journeys import aws, store
        from journeys.settings import get_settings

        get_settings.cache_clear()
        # Connections made for this stack point at its endpoint, gone now.
        store.forget_connections()
        aws.clear_clients()

    # --- helpers for callers -----------------------------------------------------------

    def _stop_executions(self) -> None:
        """Stop every running journey: their engine threads would otherwise wait on."""
        if self._server is None or self.deployment is None:
            return
        try:
            sfn = self.client("stepfunctions")
            for arn in self.deployment.state_machines.values():
                pages = sfn.get_paginator("list_executions").paginate(
                    stateMachineArn=arn, statusFilter="RUNNING"
                )
                for page in pages:
                    for execution in page["executions"]:
                        sfn.stop_execution(executionArn=execution["executionArn"])
        except Exception:  # stopping anyway: what is left ends with the process
            logger.warning("running executions not all stopped", exc_info=True)

    def client(self, service: str) -> Any:
        """A boto3 client bound to the stack's endpoint."""
        import boto3

        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.endpoint,
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def observe(self, observer: Callable[[Invocation], None]) -> None:
        """Call `observer` after every function invocation."""
        self._observers.append(observer)
        if self.host is not None:
            self.host.observe(observer)

    def state_machine_arn(self, workflow_id: str) -> str:
        assert self.deployment is not None
        return self.deployment.state_machines[f"journeys-{STAGE}-{workflow_id}"]

    def invoke(self, logical_id: str, event: Any) -> Any:
        """Invoke a function of the template (by logical id) and return its answer."""
        assert self.deployment is not None and self.host is not None
        payload, errored = self.host.run(self.deployment.functions[logical_id].name, event)
        if errored:
            raise RuntimeError(f"{logical_id} failed: {payload}")
        return payload

    # --- internals -----------------------------------------------------------------------

    def _set_env(self, values: Mapping[str, str | None]) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def _function_environment(self, deployment: Deployment) -> dict[str, str | None]:
        environment: dict[str, str | None] = dict(deployment.environment())
        # The layer's files on AWS (/opt/python/journeys/_deploy) are the project's here.
        environment["TEMPLATES_DIR"] = str(self.paths.message_templates)
        environment["WORKFLOW_INDEX"] = str(self.paths.workflow_index)
        # moto has no request quotas: the dashboard shows every move as it happens.
        environment["POSITIONS_MAX_AGE_SECONDS"] = "0"
        if self._sandbox is not None:  # webhooks and fetches stay on this machine
            environment["HTTP_SANDBOX_URL"] = self._sandbox.url
            # Ad-audience changes need a connector URL; the sandbox takes them locally.
            if not environment.get("AUDIENCE_WEBHOOK_URL"):
                environment["AUDIENCE_WEBHOOK_URL"] = "https://audiences.example.com/v1/changes"
        environment.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
        if self.quiet:
            environment["POWERTOOLS_LOG_LEVEL"] = "WARNING"
            environment["POWERTOOLS_METRICS_DISABLED"] = "true"
        environment.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Journeys")
        return environment

    def _run_lambda(self, name: str, event: Any) -> tuple[Any, bool]:
        if self.host is None:
            return {"errorType": "ServiceUnavailable", "errorMessage": "stack starting"}, True
        return self.host.run(name, event)

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=f"journeys-{name}", daemon=True)
        self._workers.append(_Worker(thread, name))
        thread.start()

    def _wire_event_sources(self, deployment: Deployment) -> None:
        queues_by_arn = {
            value: deployment.attributes[(logical, "QueueUrl")]
            for (logical, attribute), value in deployment.attributes.items()
            if attribute == "Arn" and (logical, "QueueUrl") in deployment.attributes
        }
        rules: list[tuple[Mapping[str, Any], FunctionSpec]] = []
        for spec in deployment.functions.values():
            for event_id, event in spec.events.items():
                kind, properties = event["Type"], event["Properties"]
                if kind == "SQS":
                    url = queues_by_arn[properties["Queue"]]
                    self._spawn(
                        f"sqs-{spec.logical_id}",
                        functools.partial(self._poll, spec, url, properties),
                    )
                elif kind == "Schedule":
                    if not self.schedules:
                        continue
                    period = rate_seconds(str(properties["Schedule"]))
                    self._spawn(
                        f"schedule-{spec.logical_id}",
                        functools.partial(self._schedule, spec, event_id, period),
                    )
                elif kind == "EventBridgeRule":
                    rules.append((properties["Pattern"], spec))
                elif kind == "SNS":
                    self.client("sns").subscribe(
                        TopicArn=properties["Topic"], Protocol="lambda", Endpoint=spec.arn
                    )
                elif kind != "Api":
                    raise ValueError(f"{spec.logical_id}: event type {kind} does not run locally")
        self._spawn("eventbridge", lambda: self._deliver_execution_ends(rules))

    def _poll(self, spec: FunctionSpec, url: str, properties: Mapping[str, Any]) -> None:
        """The SQS event source mapping: batches, partial failures, visibility, redrive."""
        sqs = self.client("sqs")
        batch_size = int(properties.get("BatchSize", 10))
        partial = "ReportBatchItemFailures" in (properties.get("FunctionResponseTypes") or [])
        visibility = int(
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])[
                "Attributes"
            ]["VisibilityTimeout"]
        )
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        while not self._stopping.is_set():
            try:
                messages = sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=min(batch_size, 10),
                    WaitTimeSeconds=1,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            except Exception:
                if self._stopping.is_set():
                    return
                logger.exception("polling %s failed", url)
                self._stopping.wait(1)
                continue
            if not messages:
                continue
            event = {
                "Records": [
                    {
                        "messageId": m["MessageId"],
                        "receiptHandle": m["ReceiptHandle"],
                        "body": m["Body"],
                        "attributes": m.get("Attributes", {}),
                        "messageAttributes": m.get("MessageAttributes", {}),
                        "md5OfBody": m.get("MD5OfBody", ""),
                        "eventSource": "aws:sqs",
                        "eventSourceARN": arn,
                        "awsRegion": REGION,
                    }
                    for m in messages
                ]
            }
            assert self.host is not None
            result, errored = self.host.run(spec.name, event)
            failed: set[str] = set()
            if errored:
                failed = {m["MessageId"] for m in messages}
            elif partial and isinstance(result, Mapping):
                failed = {
                    str(item.get("itemIdentifier"))
                    for item in result.get("batchItemFailures") or []
                }
            retry_after = max(0, round(journeys_clock.current().real_seconds(visibility)))
            for message in messages:
                if message["MessageId"] in failed:
                    # Visible again after the (scaled) visibility timeout; moto moves it
                    # to the dead-letter queue after maxReceiveCount receives.
                    sqs.change_message_visibility(
                        QueueUrl=url,
                        ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=retry_after,
                    )
                else:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def _schedule(self, spec: FunctionSpec, event_id: str, period: float) -> None:
        """EventBridge Scheduler at `rate(...)`: one invocation per period of stack time,
        none skipped when the scale makes periods shorter than the work."""
        assert self.deployment is not None
        due = journeys_clock.now().replace(minute=0, second=0, microsecond=0) + timedelta(
            seconds=period
        )
        while not self._stopping.is_set():
            wait = (due - journeys_clock.now()).total_seconds()
            if wait > period:  # the clock was set back (tests restart scenarios)
                due = journeys_clock.now().replace(minute=0, second=0, microsecond=0)
                due += timedelta(seconds=period)
                continue
            behind = -wait / period
            if behind > _CATCH_UP_RUNS:
                # The clock jumped (tests advance it by weeks): catch up on the last runs
                # only, or thousands of back-to-back sweeps would starve everything else.
                skipped = int(behind) - _CATCH_UP_RUNS
                due += timedelta(seconds=skipped * period)
                logger.info("%s: skipped %d runs after the clock jumped", spec.logical_id, skipped)
                continue
            if wait > 0:
                self._stopping.wait(min(journeys_clock.current().real_seconds(wait), 1.0))
                continue
            event = {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": "123456789012",
                "time": due.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": REGION,
                "resources": [f"arn:aws:events:{REGION}:123456789012:rule/{event_id}"],
                "detail": {},
            }
            assert self.host is not None
            self.host.run(spec.name, event)
            due += timedelta(seconds=period)

    def _deliver_execution_ends(self, rules: list[tuple[Mapping[str, Any], FunctionSpec]]) -> None:
        """EventBridge: "Step Functions Execution Status Change" to the matching rules."""
        while True:
            end = self._ends.get()
            if end is None or self._stopping.is_set():
                return
            event = {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "Step Functions Execution Status Change",
                "source": "aws.states",
                "account": "123456789012",
                "time": (end.stop_date or journeys_clock.now()).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": REGION,
                "resources": [end.execution_arn],
                "detail": {
                    "executionArn": end.execution_arn,
                    "stateMachineArn": end.state_machine_arn,
                    "name": end.name,
                    "status": end.status,
                    "startDate": _epoch_ms(end.start_date),
                    "stopDate": _epoch_ms(end.stop_date),
                    "input": end.input,
                    "output": end.output,
                    "inputDetails": {"included": True},
                    "outputDetails": {"included": end.output is not None},
                    "error": end.error,
                    "cause": end.cause,
                },
            }
            for pattern, spec in rules:
                if event_pattern_matches(pattern, event) and self.host is not None:
                    self.host.run(spec.name, json.loads(json.dumps(event)))

    def _start_api(self, deployment: Deployment) -> None:
        from journeys.local.gateway import LocalApi
        from journeys.local.resources import load_template

        by_logical = deployment.functions

        def invoke(logical_id: str, event: dict[str, Any]) -> dict[str, Any]:
            assert self.host is not None
            payload, errored = self.host.run(by_logical[logical_id].name, event)
            if errored:
                raise RuntimeError(payload.get("errorMessage", "the function failed"))
            return dict(payload)

        self._api = LocalApi.from_template(
            load_template(self.paths.template),
            invoke,
            api_keys=[self.api_key],
            stage=STAGE,
            port=self.api_port,
            extra_routes=self._local_routes(),
            public_routes=dashboard_routes(self.paths.dashboard),
        )
        self._api.start()
        self.api_url = str(self._api.url)

    @property
    def dashboard_url(self) -> str:
        """The dashboard, with the API key it stores and removes from the address bar."""
        return f"{self.api_url}/dashboard/?key={self.api_key}"

    def _local_routes(self) -> dict[tuple[str, str], Any]:
        """Routes only the local stack has (they need the API key too)."""
        from journeys.local.gateway import LocalRequest, LocalResponse

        def outbox(request: LocalRequest) -> LocalResponse:
            query = dict(request.query)
            try:
                after = int(query.get("after", "0") or 0)
            except ValueError:
                return LocalResponse.json(400, {"message": "after must be a whole number"})
            assert self.outbox is not None
            entries = self.outbox.entries(
                contact_id=query.get("contact_id") or None,
                workflow_id=query.get("workflow_id") or None,
                after=after,
            )
            return LocalResponse.json(
                200,
                {
                    "generated_at": journeys_clock.now().isoformat().replace("+00:00", "Z"),
                    "messages": [e.as_dict() for e in entries],
                },
            )

        return {("GET", "/local/outbox"): outbox}


#: Content types of the dashboard's files (no guessing from the platform's tables).
DASHBOARD_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
}


def dashboard_routes(folder: Path) -> dict[tuple[str, str], Any]:
    """The dashboard's static files at /dashboard/ (no key: the page asks the API with it).

    On AWS the same files are served by any static host; here by the local API, so the
    page and the API share an origin."""
    from journeys.local.gateway import LocalRequest, LocalResponse

    root = folder.resolve()

    def serve(request: LocalRequest) -> LocalResponse:
        if request.path == "/dashboard":
            # Relative addresses in the page (app.js) need the file's own folder.
            query = f"?{urlencode(request.query)}" if request.query else ""
            return LocalResponse(302, b"", (("Location", f"/dashboard/index.html{query}"),))
        relative = unquote(request.path_parameters.get("proxy", "")) or "index.html"
        target = (root / relative).resolve()
        if root not in target.parents or not target.is_file():
            return LocalResponse.json(404, {"message": f"no file {relative!r} in the dashboard"})
        kind = DASHBOARD_TYPES.get(target.suffix, "application/octet-stream")
        headers = (("Content-Type", kind), ("Cache-Control", "no-cache"))
        return LocalResponse(200, target.read_bytes(), headers)

    return {("GET", "/dashboard"): serve, ("GET", "/dashboard/{proxy+}"): serve}
