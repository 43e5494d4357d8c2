"""The local stack's deployer builds template.yaml's resources in moto, named as on AWS."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from journeys.local.resources import NOT_DEPLOYED, DeploymentError, deploy, load_template

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"


def _client(service: str):  # type: ignore[no-untyped-def]
    return boto3.client(service, region_name=REGION)


def test_every_resource_of_the_template_is_deployed_or_deliberately_skipped() -> None:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        # WHEN the template is deployed into moto
        deployment = deploy(ROOT / "template.yaml", _client, stage="local", region=REGION)
        template = load_template(ROOT / "template.yaml")

        # THEN every table of the template exists, with its keys
        tables = set(_client("dynamodb").list_tables()["TableNames"])
        declared = [
            k for k, r in template["Resources"].items() if r["Type"] == "AWS::DynamoDB::Table"
        ]
        assert {deployment.refs[k] for k in declared} <= tables
        # ... every function, with its environment resolved to the deployed names
        assert set(deployment.functions) == {
            k for k, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"
        }
        environment = deployment.environment()
        assert environment["CONTACTS_TABLE"] == deployment.refs["ContactsTable"]
        assert environment["EVENTS_QUEUE_URL"] == deployment.refs["EventsQueue"]
        assert environment["STATE_MACHINE_ARN_PREFIX"].endswith(":stateMachine:journeys-local-")
        # ... one state machine per compiled workflow (the nested stack) and the import
        index = json.loads((ROOT / "state_machines" / "index.json").read_text())
        for workflow_id in index["workflows"]:
            assert f"journeys-local-{workflow_id}" in deployment.state_machines
        # ... the router's queue has its dead-letter queue
        attributes = _client("sqs").get_queue_attributes(
            QueueUrl=deployment.refs["EventsQueue"], AttributeNames=["RedrivePolicy"]
        )["Attributes"]
        assert "deadLetterTargetArn" in attributes["RedrivePolicy"]
        # ... and what is skipped is skipped for a stated reason
        assert all(reason for reason in NOT_DEPLOYED.values())
        assert "Api" in deployment.skipped


def test_an_unknown_resource_type_is_refused_with_what_to_do(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text("Resources:\n  Stream:\n    Type: AWS::Kinesis::Stream\n")
    with mock_aws(), pytest.raises(DeploymentError, match="add a builder"):
        deploy(template, _client)


def test_a_reference_to_nothing_is_refused(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(
        "Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n    Properties:\n"
        "      QueueName: !Ref Missing\n"
    )
    with mock_aws(), pytest.raises(DeploymentError, match="cannot resolve"):
        deploy(template, _client)
