"""The JSON Schema of workflow files, generated from the models so it cannot drift.

Editors use it to complete and check workflows: add
`# yaml-language-server: $schema=../schema/workflow.schema.json` at the top of a file.
"""

from __future__ import annotations

import json
from typing import Any

from journeys.compiler.models import Workflow

SCHEMA_ID = "https://github.com/journeys-aws/journeys/schema/workflow.schema.json"


def workflow_schema() -> dict[str, Any]:
    schema = Workflow.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def render_schema() -> str:
    return json.dumps(workflow_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
