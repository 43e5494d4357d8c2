"""Build moto resources from template.yaml, so tests and the template cannot drift."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from journeys.local.engine import runnable_on_moto as moto_runnable  # noqa: F401  (for tests)

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/journeys-state-machine"


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags (!Ref, !Sub, !GetAtt ...) as plain mappings."""


def _tag(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(path: Path = ROOT / "template.yaml") -> dict[str, Any]:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)


def resources_of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def create_tables(dynamodb: Any, template: dict[str, Any], stage: str = "test") -> dict[str, str]:
    """Create every DynamoDB table of the template; return logical id -> table name."""
    names = {}
    for logical_id, resource in resources_of_type(template, "AWS::DynamoDB::Table").items():
        properties = resource["Properties"]
        table_name = _resolve_name(properties.get("TableName"), stage) or logical_id
        arguments = {
            key: properties[key]
            for key in (
                "AttributeDefinitions",
                "KeySchema",
                "BillingMode",
                "GlobalSecondaryIndexes",
                "LocalSecondaryIndexes",
            )
            if key in properties
        }
        dynamodb.create_table(TableName=table_name, **arguments)
        names[logical_id] = table_name
    return names


def create_buckets(s3: Any, template: dict[str, Any], stage: str = "test") -> dict[str, str]:
    """Create every S3 bucket of the template (CloudFormation names them; here
    journeys-<logical id>-<stage>); return logical id -> bucket name."""
    names = {}
    for logical_id in resources_of_type(template, "AWS::S3::Bucket"):
        name = f"journeys-{logical_id.lower()}-{stage}"
        s3.create_bucket(Bucket=name)
        names[logical_id] = name
    return names


def state_machine_definition(
    template: dict[str, Any], logical_id: str, values: dict[str, str]
) -> dict[str, Any]:
    """An inline `Definition` of the template with its DefinitionSubstitutions filled."""
    definition = template["Resources"][logical_id]["Properties"]["Definition"]
    filled: dict[str, Any] = json.loads(fill_substitutions(json.dumps(definition), values))
    return filled


def create_queues(sqs: Any, template: dict[str, Any]) -> dict[str, str]:
    """Create every SQS queue of the template; return logical id -> queue URL."""
    return {
        logical_id: sqs.create_queue(QueueName=logical_id)["QueueUrl"]
        for logical_id in resources_of_type(template, "AWS::SQS::Queue")
    }


def _resolve_name(value: Any, stage: str) -> str | None:
    if isinstance(value, dict) and "Fn::Sub" in value:
        return str(value["Fn::Sub"]).replace("${Stage}", stage)
    return value if isinstance(value, str) else None


def fill_substitutions(definition: str, values: dict[str, str]) -> str:
    """What SAM's DefinitionSubstitutions does; unknown names become dummy Lambda ARNs."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return values.get(name, f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}")

    return re.sub(r"\$\{(\w+)\}", value, definition)


def history_state_names(client: Any, execution_arn: str) -> list[str]:
    events = client.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    return [
        event["stateEnteredEventDetails"]["name"]
        for event in events
        if "stateEnteredEventDetails" in event
    ]


def dumps(value: Any) -> str:
    return json.dumps(value)


def park_on_token(sfn: Any, sqs: Any, name: str, waiting: str, released: str) -> tuple[str, str]:
    """Start an execution that waits up to 30 s on a task token, as a wait_for_event step
    does; return (execution ARN, token). State `released` follows SendTaskSuccess."""
    import time

    queue = sqs.create_queue(QueueName=f"tokens-{name}")["QueueUrl"]
    machine = {
        "StartAt": waiting,
        "States": {
            waiting: {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
                "TimeoutSeconds": 30,
                "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "Timed out"}],
                "Next": released,
            },
            released: {"Type": "Succeed"},
            "Timed out": {"Type": "Succeed"},
        },
    }
    arn = sfn.create_state_machine(name=name, definition=json.dumps(machine), roleArn=ROLE_ARN)[
        "stateMachineArn"
    ]
    execution = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
    for _ in range(100):
        messages = sqs.receive_message(QueueUrl=queue).get("Messages", [])
        if messages:
            return str(execution), str(json.loads(messages[0]["Body"])["token"])
        time.sleep(0.05)
    raise AssertionError("the parked execution never sent its task token")


def drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every message now on the queue, decoded (and removed)."""
    bodies: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        if not batch:
            return bodies
        for message in batch:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
