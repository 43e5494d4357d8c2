"""What moto's Step Functions engine needs to run Journeys on one machine.

moto (5.2.x) executes ASL for real, but four things stand between it and a journey:

1. **Lambda code.** moto runs Lambda functions in Docker, which this product must not
   need. `LambdaFunction._invoke_lambda` is replaced by a call to the project's own
   handler in this process (`run_lambda`), so Task states, `aws lambda invoke` and
   Distributed Map batches all run the real code.
2. **Time.** Journeys wait days. Every clock the engine reads (state entered times, the
   execution start, history timestamps) is the installed `journeys.clock`, `Wait`
   states wait until the clock reaches their end (so speeding the clock up or advancing
   it ends them sooner), and explicit `TimeoutSeconds` (the "wait up to 2 h" of
   wait_for_event) are scaled at the scale in force when the task starts. The engine's
   default timeout (99999999 s, "none") is left alone, and so is the time a handler
   takes. moto's own `Timestamp` wait also compares a UTC time with the local wall clock;
   the replacement parses it as UTC.
3. **`states:startExecution`** (the `repeat` step): moto hands ASL's PascalCase
   parameters to botocore, which wants camelCase, then fails to serialise the datetime
   in the answer. Parameters are camel-cased and the answer made JSON, as AWS returns it
   (`ExecutionArn`, `StartDate`).
4. **Execution ends.** AWS announces them on EventBridge (the statistics function
   listens); moto announces nothing, so `on_execution_end` is called with each ended
   execution and the local stack delivers the EventBridge event.

`install` patches moto's classes in this process; `uninstall` restores them. The patches
name moto internals, so moto is pinned (pyproject.toml) and `tests/unit/test_local_stack.py`
fails loudly when an upgrade moves them.
"""

from __future__ import annotations

import datetime as _datetime
import json
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from journeys import clock as journeys_clock

__all__ = [
    "ExecutionEnd",
    "LambdaRunner",
    "install",
    "installed",
    "runnable_on_moto",
    "uninstall",
]

# (function name, event) -> (payload, errored). An errored payload is
# {"errorType", "errorMessage"}: the error name Retry and Catch match.
LambdaRunner = Callable[[str, Any], tuple[Any, bool]]


@dataclass(frozen=True)
class ExecutionEnd:
    """An execution that stopped, as EventBridge's "Execution Status Change" tells it."""

    execution_arn: str
    state_machine_arn: str
    name: str
    status: str
    start_date: _datetime.datetime
    stop_date: _datetime.datetime | None
    input: str
    output: str | None
    error: str | None
    cause: str | None


_MODULES_READING_TIME = (
    "moto.stepfunctions.parser.asl.component.state.state",
    "moto.stepfunctions.parser.asl.eval.event.event_manager",
    "moto.stepfunctions.parser.models",
    "moto.stepfunctions.parser.backend.execution",
    "moto.stepfunctions.parser.asl.component.state.exec.state_parallel.branches_decl",
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.map_run_record",
)

_LONGEST_NAP = 0.2  # seconds of real time between looks at the clock in a Wait state
_lock = threading.Lock()
_restore: list[Callable[[], None]] = []


def installed() -> bool:
    return bool(_restore)


def install(
    run_lambda: LambdaRunner,
    on_execution_end: Callable[[ExecutionEnd], None] | None = None,
) -> None:
    """Patch moto so executions run the project's handlers on `journeys.clock` time."""
    with _lock:
        if _restore:
            raise RuntimeError("the local engine is already installed in this process")
        try:
            _patch_lambda(run_lambda)
            _patch_time()
            _patch_waits()
            _patch_timeouts()
            _patch_start_execution()
            if on_execution_end is not None:
                _patch_execution_end(on_execution_end)
        except BaseException:
            _undo()
            raise


def uninstall() -> None:
    with _lock:
        _undo()


def _undo() -> None:
    while _restore:
        _restore.pop()()


def _replace(owner: Any, name: str, value: Any) -> None:
    original = getattr(owner, name)
    setattr(owner, name, value)
    _restore.append(lambda: setattr(owner, name, original))


def runnable_on_moto(definition: dict[str, Any]) -> dict[str, Any]:
    """What moto 5.2.5's ASL parser needs of a Distributed Map: it rejects `ItemBatcher`,
    `ExecutionType: EXPRESS` and an integer `ToleratedFailurePercentage` (a float is
    accepted, and ignored). The batcher becomes an ItemSelector handing each iteration a
    batch of one, ``{"Items": [row], "BatchInput": {...}}``: the shape the batch's task
    gets on AWS. Only the local deployment applies this; AWS gets the template as is."""
    runnable: dict[str, Any] = json.loads(json.dumps(definition))
    for state in runnable["States"].values():
        if state.get("Type") != "Map":
            continue
        batcher = state.pop("ItemBatcher", None)
        if batcher is not None:
            assert "ItemSelector" not in state, "an ItemSelector and an ItemBatcher: unsupported"
            state["ItemSelector"] = {
                "Items.$": "States.Array($$.Map.Item.Value)",
                "BatchInput": batcher.get("BatchInput", {}),
            }
        config = state.get("ItemProcessor", {}).get("ProcessorConfig", {})
        if config.get("ExecutionType") == "EXPRESS":
            config["ExecutionType"] = "STANDARD"
        if "ToleratedFailurePercentage" in state:
            state["ToleratedFailurePercentage"] = float(state["ToleratedFailurePercentage"])
    return runnable


# --- 1. Lambda functions run in process ------------------------------------------------


def _patch_lambda(run_lambda: LambdaRunner) -> None:
    from moto.awslambda.models import LambdaFunction

    def invoke_in_process(self: Any, event: Any = None) -> tuple[str, bool, str]:
        payload, errored = run_lambda(str(self.function_name), {} if event is None else event)
        return json.dumps(payload, default=str), errored, ""

    _replace(LambdaFunction, "_invoke_lambda", invoke_in_process)


# --- 2. Time ---------------------------------------------------------------------------


class _ClockDatetime(_datetime.datetime):
    """`datetime.datetime` whose `now()` reads the installed journeys clock."""

    @classmethod
    def now(cls, tz: _datetime.tzinfo | None = None) -> _ClockDatetime:
        moment = journeys_clock.now()
        if tz is None:  # moto compares naive "now" with naive UTC times
            moment = moment.astimezone(_datetime.UTC).replace(tzinfo=None)
        else:
            moment = moment.astimezone(tz)
        return cls(
            moment.year,
            moment.month,
            moment.day,
            moment.hour,
            moment.minute,
            moment.second,
            moment.microsecond,
            tzinfo=moment.tzinfo,
        )

    @classmethod
    def utcnow(cls) -> _ClockDatetime:
        return cls.now()


def _clock_datetime_module() -> types.ModuleType:
    module = types.ModuleType("datetime", "datetime, reading time from journeys.clock")
    module.__dict__.update({k: v for k, v in vars(_datetime).items() if not k.startswith("__")})
    module.datetime = _ClockDatetime  # type: ignore[attr-defined]
    return module


def _patch_time() -> None:
    import importlib

    shim = _clock_datetime_module()
    for name in _MODULES_READING_TIME:
        module = importlib.import_module(name)
        if getattr(module, "datetime", None) is not _datetime:
            raise RuntimeError(f"{name} no longer imports datetime as a module; check moto")
        _replace(module, "datetime", shim)


def _patch_waits() -> None:
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.timestamp import (
        Timestamp,
    )
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
        WaitFunction,
    )

    def wake_time(self: Any, env: Any) -> _datetime.datetime:
        if isinstance(self, Timestamp):
            self.string.eval(env=env)
            text = env.stack.pop()
            moment = Timestamp._from_timestamp_string(text)
            if moment is None:
                raise FailureEventException(self._create_failure_event(env, text))
            return moment.replace(tzinfo=_datetime.UTC)
        return journeys_clock.now() + _datetime.timedelta(seconds=self._get_wait_seconds(env))

    def wait_on_the_clock(self: Any, env: Any) -> None:
        wake = wake_time(self, env)
        while env.is_running():
            remaining = (wake - journeys_clock.now()).total_seconds()
            if remaining <= 0:
                return
            # Short naps, so a clock that is sped up or advanced wakes the wait in time;
            # the event is set when the execution is stopped (is_running() then ends it).
            nap = min(journeys_clock.current().real_seconds(remaining), _LONGEST_NAP)
            env.program_state_event.wait(nap)

    _replace(WaitFunction, "_eval_body", wait_on_the_clock)


#: Real seconds a scaled TimeoutSeconds may last at most (a year).
LONGEST_REAL_TIMEOUT = 365 * 86400


def _patch_timeouts() -> None:
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import Timeout

    def scaled_timeout(self: Any, env: Any) -> None:
        seconds = self._eval_seconds(env=env)
        if not self.is_default_value():
            # A clock run very slowly (or stopped) would turn a year-long watch into a
            # time beyond what the platform's timers take: no local stack runs a year.
            seconds = min(journeys_clock.current().real_seconds(seconds), LONGEST_REAL_TIMEOUT)
        env.stack.append(seconds)

    _replace(Timeout, "_eval_body", scaled_timeout)


# --- 3. states:startExecution ----------------------------------------------------------


def _json_ready(value: Any) -> Any:
    if isinstance(value, _datetime.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    return value


def _patch_start_execution() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_sfn as sfn_service,
    )

    original = sfn_service.StateTaskServiceSfn._eval_service_task

    def eval_service_task(
        self: Any,
        env: Any,
        resource_runtime_part: Any,
        normalised_parameters: dict[str, Any],
        state_credentials: Any,
    ) -> None:
        camel = {key[:1].lower() + key[1:]: value for key, value in normalised_parameters.items()}
        original(self, env, resource_runtime_part, camel, state_credentials)
        response = env.stack.pop()
        env.stack.append(
            {key[:1].upper() + key[1:]: _json_ready(value) for key, value in response.items()}
        )

    _replace(sfn_service.StateTaskServiceSfn, "_eval_service_task", eval_service_task)


# --- 4. Execution ends -----------------------------------------------------------------


def _patch_execution_end(on_execution_end: Callable[[ExecutionEnd], None]) -> None:
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    original = BaseExecutionWorkerCommunication.terminated

    def terminated(self: Any) -> None:
        original(self)
        execution = self.execution
        output = execution.output
        on_execution_end(
            ExecutionEnd(
                execution_arn=str(execution.exec_arn),
                state_machine_arn=str(execution.state_machine.arn),
                name=str(execution.name),
                status=str(getattr(execution.exec_status, "value", execution.exec_status)),
                start_date=execution.start_date,
                stop_date=execution.stop_date,
                input=to_json_str(execution.input_data),
                output=None if output is None else to_json_str(output),
                error=execution.error,
                cause=execution.cause,
            )
        )

    _replace(BaseExecutionWorkerCommunication, "terminated", terminated)
