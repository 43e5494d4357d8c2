"""template.yaml stays in step with the code it deploys."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.helpers.aws import ROOT, load_template, resources_of_type

TEMPLATE = load_template()


def test_every_function_directory_is_deployed_and_every_function_exists() -> None:
    functions = resources_of_type(TEMPLATE, "AWS::Serverless::Function")
    declared = {Path(f["Properties"]["CodeUri"]).name for f in functions.values()}
    on_disk = {p.parent.name for p in (ROOT / "functions").glob("*/app.py")}
    assert declared == on_disk


def test_tables_are_on_demand_and_recoverable() -> None:
    for name, table in resources_of_type(TEMPLATE, "AWS::DynamoDB::Table").items():
        properties = table["Properties"]
        assert properties["BillingMode"] == "PAY_PER_REQUEST", name
        if name != "IdempotencyTable":  # short-lived records; nothing to recover
            assert properties["PointInTimeRecoverySpecification"] == {
                "PointInTimeRecoveryEnabled": True
            }, name


def test_functions_never_get_wildcard_actions_on_data() -> None:
    for name, function in resources_of_type(TEMPLATE, "AWS::Serverless::Function").items():
        for policy in function["Properties"].get("Policies", []):
            for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
                actions = statement["Action"]
                actions = actions if isinstance(actions, list) else [actions]
                assert not any(a.endswith("*") for a in actions), (name, actions)


def test_dashboard_is_valid_json() -> None:
    body = TEMPLATE["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]
    assert len(widgets) >= 4


def test_state_machine_stack_gets_every_parameter_it_declares() -> None:
    stack = json.loads((ROOT / "state_machines" / "template.json").read_text())
    passed = TEMPLATE["Resources"]["StateMachines"]["Properties"]["Parameters"]
    assert set(stack["Parameters"]) == set(passed)
