"""Compiled state machines on moto's Step Functions interpreter, in process (mock_aws):
the direct integrations (DynamoDB, SQS, Parallel races, random splits) without Lambdas."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from journeys.compiler.pipeline import CompileResult, render_machine
from tests.helpers.aws import (
    REGION,
    ROLE_ARN,
    create_queues,
    create_tables,
    fill_substitutions,
    history_state_names,
    load_template,
)
from tests.helpers.workflows import compile_one


@pytest.fixture
def local_aws() -> Iterator[dict[str, Any]]:
    """moto with its Step Functions interpreter on, and the template's tables and queues."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        template = load_template()
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        tables = create_tables(dynamodb, template)
        queues = create_queues(sqs, template)
        yield {
            "stepfunctions": boto3.client("stepfunctions", region_name=REGION),
            "dynamodb": dynamodb,
            "sqs": sqs,
            "substitutions": {
                "ContactsTableName": tables["ContactsTable"],
                "EventsQueueUrl": queues["EventsQueue"],
            },
        }


def create_machine(aws: dict[str, Any], result: CompileResult) -> str:
    assert result.machine is not None and result.workflow is not None
    definition = fill_substitutions(render_machine(result.machine), aws["substitutions"])
    response = aws["stepfunctions"].create_state_machine(
        name=result.workflow.id, definition=definition, roleArn=ROLE_ARN
    )
    return str(response["stateMachineArn"])


def run(
    aws: dict[str, Any], machine_arn: str, contact_id: str, timeout: float = 30
) -> dict[str, Any]:
    client = aws["stepfunctions"]
    execution = client.start_execution(
        stateMachineArn=machine_arn,
        name=f"{contact_id}-demo-0",
        input=json.dumps(
            {
                "contact_id": contact_id,
                "workflow_id": "demo",
                "entry_id": f"{contact_id}-demo",
                "iteration": 0,
                "trigger": {"key": "event:signed_up"},
                "data": {},
            }
        ),
    )["executionArn"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = client.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return {**described, "states": history_state_names(client, execution)}
        time.sleep(0.05)
    raise AssertionError(f"{execution} still running after {timeout}s")


def deploy(aws: dict[str, Any], directory: Path, workflow_yaml: str) -> str:
    """Compile a workflow and create its state machine on the local engine."""
    result = compile_one(directory, workflow_yaml)
    assert result.ok, [d.format() for d in result.diagnostics]
    return create_machine(aws, result)


def put_contact(aws: dict[str, Any], contact_id: str) -> None:
    aws["dynamodb"].put_item(
        TableName=aws["substitutions"]["ContactsTableName"],
        Item={
            "contact_id": {"S": contact_id},
            "attributes": {"M": {"plan": {"S": "free"}}},
            "tags": {"M": {"old": {"S": "2026-01-01T00:00:00Z"}}},
            "lists": {"M": {}},
            "segments": {"M": {}},
            "channels": {"M": {}},
        },
    )


def get_contact(aws: dict[str, Any], contact_id: str) -> dict[str, Any]:
    item = aws["dynamodb"].get_item(
        TableName=aws["substitutions"]["ContactsTableName"], Key={"contact_id": {"S": contact_id}}
    )["Item"]
    return dict(item)


def test_every_reference_workflow_is_accepted(
    local_aws: dict[str, Any], library: dict[str, CompileResult]
) -> None:
    """moto validates definitions with the same ASL parser that executes them."""
    assert len(library) >= 20, sorted(library)
    for result in library.values():
        arn = create_machine(local_aws, result)
        described = local_aws["stepfunctions"].describe_state_machine(stateMachineArn=arn)
        names = state_names(json.loads(described["definition"]))
        assert result.journey is not None
        labels = {n.label for n in result.journey.nodes.values() if n.kind != "goto"}
        assert labels <= names, f"{result.file}: labels missing from states: {labels - names}"


def state_names(machine: dict[str, Any]) -> set[str]:
    names = set(machine["States"])
    for state in machine["States"].values():
        for branch in state.get("Branches", []):
            names |= state_names(branch)
    return names


DIRECT_ACTIONS = """
id: demo
name: Demo
trigger: {event: signed_up}
settings: {stop_on_unsubscribe: false}
steps:
  - {type: add_tag, label: Tag as new, tag: new}
  - {type: remove_tag, label: Drop old tag, tag: old}
  - {type: change_score, label: Score the signup, by: 10}
  - {type: set_attribute, label: Mark onboarding, attribute: stage_name, value: onboarding}
  - {type: set_funnel_stage, label: Move to prospect, stage: prospect}
  - {type: subscribe, label: Join newsletter, list: newsletter}
  - id: pause
    type: wait
    label: Pause a second
    for: 1s
  - type: change_score
    label: Score each round
    by: 5
  - type: goto
    label: Another round?
    step: pause
    max_times: 2
  - type: ab_split
    label: Pick a path
    variants:
      - label: Path A
        weight: 50
        steps:
          - {type: start_workflow, label: Hand over to nurture, workflow: demo}
      - label: Path B
        weight: 50
        steps:
          - {type: unsubscribe, label: Leave newsletter, list: newsletter}
  - type: end
    label: Onboarded
"""


def test_direct_integrations_execute_and_states_carry_labels(
    local_aws: dict[str, Any], tmp_path: Path
) -> None:
    # GIVEN a workflow whose steps all run as direct service integrations
    arn = deploy(local_aws, tmp_path, DIRECT_ACTIONS)
    put_contact(local_aws, "c-1")

    # WHEN a contact goes through it
    outcome = run(local_aws, arn, "c-1")

    # THEN it succeeds, every step is visible by its label, and the contact was updated
    assert outcome["status"] == "SUCCEEDED", outcome
    states = outcome["states"]
    assert states[:7] == [
        "Start journey",
        "Tag as new",
        "Drop old tag",
        "Score the signup",
        "Mark onboarding",
        "Move to prospect",
        "Join newsletter",
    ]
    assert states.count("Pause a second") == 3  # the first pass and two rounds back
    assert states.count("Count: Another round?") == 2
    assert states[-1] == "Onboarded"
    assert "Draw: Pick a path" in states and "Pick a path" in states
    contact = get_contact(local_aws, "c-1")
    assert set(contact["tags"]["M"]) == {"new"}
    attributes = contact["attributes"]["M"]
    assert attributes["score"] == {"N": "25"}  # 10 + 5 x 3 rounds
    assert attributes["stage_name"] == {"S": "onboarding"}
    assert attributes["funnel_stage"] == {"S": "prospect"}
    path_a = "Hand over to nurture" in states
    assert contact["lists"]["M"]["newsletter"] == {"S": "subscribed" if path_a else "unsubscribed"}
    if path_a:
        messages = local_aws["sqs"].receive_message(
            QueueUrl=local_aws["substitutions"]["EventsQueueUrl"]
        )["Messages"]
        body = json.loads(messages[0]["Body"])
        assert body["type"] == "enter_workflow" and body["contact_id"] == "c-1"


def test_random_split_takes_both_paths(local_aws: dict[str, Any], tmp_path: Path) -> None:
    arn = deploy(
        local_aws,
        tmp_path,
        """
id: demo
name: Demo
trigger: {event: signed_up}
settings: {stop_on_unsubscribe: false}
steps:
  - type: ab_split
    label: Pick a path
    variants:
      - {label: Variant A, weight: 45, steps: [{type: end, label: Ended A}]}
      - {label: Variant B, weight: 45, steps: [{type: end, label: Ended B}]}
    holdout: {weight: 10, label: Control group}
""",
    )
    endings = {run(local_aws, arn, f"c-{n}")["states"][-1] for n in range(40)}
    assert {"Ended A", "Ended B"} <= endings
    assert endings <= {"Ended A", "Ended B", "Control group"}


def test_goal_race_ends_the_journey_as_completed(local_aws: dict[str, Any], tmp_path: Path) -> None:
    """With exits configured, an end inside the race is caught as "Journey completed".

    The watch branch waits for a task token that never comes (the router is another
    issue); the journey branch finishing must still end the execution successfully.
    """
    arn = deploy(
        local_aws,
        tmp_path,
        """
id: demo
name: Demo
trigger: {event: signed_up}
steps:
  - {type: add_tag, label: Tag as new, tag: new}
  - {type: end, label: All done}
""",
    )
    put_contact(local_aws, "c-race")
    outcome = run(local_aws, arn, "c-race")
    assert outcome["status"] == "SUCCEEDED", outcome
    assert "Demo" in outcome["states"]  # the Parallel carries the workflow's name
    assert outcome["states"][-1] == "Journey completed"
    assert "All done" in outcome["states"]


@pytest.mark.xfail(
    strict=True,
    reason="moto 5.2.5 defect: its states:startExecution integration passes ASL's PascalCase "
    "parameters to botocore (KeyError 'StateMachineArn') and cannot serialise the response; "
    "the local stack must patch it (see the issue notes)",
)
def test_repeat_continues_as_a_new_execution(local_aws: dict[str, Any], tmp_path: Path) -> None:
    # GIVEN a journey that scores the contact and repeats, three runs in all
    arn = deploy(
        local_aws,
        tmp_path,
        """
id: demo
name: Demo
trigger: {event: signed_up}
settings: {stop_on_unsubscribe: false}
steps:
  - {type: change_score, label: Weekly point, by: 1}
  - {type: repeat, label: Next week, after: 1s, times: 3}
""",
    )
    put_contact(local_aws, "c-repeat")

    # WHEN the first run finishes
    first = run(local_aws, arn, "c-repeat")
    assert first["status"] == "SUCCEEDED", first

    # THEN each run started the next, with a fresh history, until three runs were done
    client = local_aws["stepfunctions"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        executions = client.list_executions(stateMachineArn=arn)["executions"]
        if len(executions) == 3 and all(e["status"] != "RUNNING" for e in executions):
            break
        time.sleep(0.1)
    names = sorted(e["name"] for e in executions)
    assert names == ["c-repeat-demo-0", "c-repeat-demo-r1", "c-repeat-demo-r2"]
    score = get_contact(local_aws, "c-repeat")["attributes"]["M"]["score"]
    assert score == {"N": "3"}
