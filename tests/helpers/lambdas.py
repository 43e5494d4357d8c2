"""Load a function's app.py the way Lambda does (functions/ are not a package)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def load_handler(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"{name}_app", ROOT / "functions" / name / "app.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeLambdaContext:
    """The attributes Powertools' Logger reads from a Lambda context object."""

    def __init__(self, name: str) -> None:
        self.function_name = name
        self.memory_limit_in_mb = 128
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        self.aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def invoke(name: str, event: dict[str, Any]) -> Any:
    return load_handler(name).handler(event, FakeLambdaContext(name))
