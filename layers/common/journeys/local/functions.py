"""Run the template's Lambda functions in this process, as the Lambda service would.

`functions/<name>/app.py` files are loaded from their `CodeUri` the way the Lambda
runtime loads them (by path, not as a package), once, and called with the event and a
context object. An exception becomes what Lambda returns for an unhandled error —
`{"errorType", "errorMessage", "stackTrace"}` — so Step Functions' `Retry` and `Catch`
match the same error names as on AWS (`SendDeferred`, `TransientError`, ...).

Handlers run on a pool of long-lived threads, like warm Lambda containers: what a handler
keeps per thread (pynamodb's botocore session, Powertools state) is made once, not on
every call — the local stack would otherwise spend most of its time loading botocore's
service models.

Observers see every invocation and its result; the local stack's outbox uses them to
know which workflow step sent which message.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from journeys.local.resources import FunctionSpec

__all__ = ["FunctionHost", "Invocation", "LocalContext"]

logger = logging.getLogger("journeys.local.functions")


@dataclass(frozen=True)
class Invocation:
    function: FunctionSpec
    event: Any
    result: Any
    errored: bool
    milliseconds: float


class LocalContext:
    """The Lambda context object handlers (and Powertools) read."""

    def __init__(self, spec: FunctionSpec) -> None:
        self.function_name = spec.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = spec.arn
        self.memory_limit_in_mb = 256
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{spec.name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + spec.timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class FunctionHost:
    """Calls the handlers of `functions` (by function name) in process."""

    def __init__(self, functions: Mapping[str, FunctionSpec], workers: int = 32) -> None:
        self._by_name = {spec.name: spec for spec in functions.values()}
        self._modules: dict[str, ModuleType] = {}
        self._lock = threading.Lock()
        self._observers: list[Callable[[Invocation], None]] = []
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lambda")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def observe(self, observer: Callable[[Invocation], None]) -> None:
        self._observers.append(observer)

    def spec(self, name: str) -> FunctionSpec:
        try:
            return self._by_name[name]
        except KeyError:
            raise LookupError(f"no function named {name!r} in the template") from None

    def _handler(self, spec: FunctionSpec) -> Callable[[Any, Any], Any]:
        module_file, _, attribute = spec.handler.rpartition(".")
        with self._lock:
            module = self._modules.get(spec.name)
            if module is None:
                path = spec.code_dir / f"{module_file.replace('.', '/')}.py"
                loader_spec = importlib.util.spec_from_file_location(
                    f"journeys_local_{spec.logical_id}", path
                )
                if loader_spec is None or loader_spec.loader is None:
                    raise LookupError(f"{spec.logical_id}: cannot load {path}")
                module = importlib.util.module_from_spec(loader_spec)
                loader_spec.loader.exec_module(module)
                self._modules[spec.name] = module
        handler: Callable[[Any, Any], Any] = getattr(module, attribute)
        return handler

    def run(self, name: str, event: Any) -> tuple[Any, bool]:
        """Invoke function `name`; (payload, errored) as the Lambda Invoke API answers."""
        spec = self.spec(name)
        return self._pool.submit(self._run, spec, event).result()

    def _run(self, spec: FunctionSpec, event: Any) -> tuple[Any, bool]:
        started = time.perf_counter()
        try:
            result, errored = self._handler(spec)(event, LocalContext(spec)), False
        except Exception as error:  # what Lambda reports for an unhandled exception
            errored = True
            result = {
                "errorType": type(error).__name__,
                "errorMessage": str(error),
                "stackTrace": traceback.format_tb(error.__traceback__),
            }
            logger.debug("%s raised %s: %s", spec.logical_id, type(error).__name__, error)
        invocation = Invocation(
            spec, event, result, errored, (time.perf_counter() - started) * 1000
        )
        for observer in self._observers:
            try:
                observer(invocation)
            except Exception:
                logger.exception("an observer of %s failed", spec.logical_id)
        return result, errored
