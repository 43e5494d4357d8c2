"""How the router reads StartExecution's answers, on moto (faults moto cannot produce are
raised from a botocore hook on the real client)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from moto import mock_aws

from journeys import router
from journeys.exceptions import TransientError
from tests.helpers.aws import REGION, ROLE_ARN

MACHINE = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 60, "End": True}}}


@pytest.fixture
def sfn() -> Iterator[tuple[Any, str]]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        client = boto3.client("stepfunctions", region_name=REGION)
        arn = client.create_state_machine(
            name="journeys-test-cart", definition=json.dumps(MACHINE), roleArn=ROLE_ARN
        )["stateMachineArn"]
        yield client, arn


def failing_with(client: Any, error: Exception) -> Any:
    def fail(**_: Any) -> None:
        raise error

    client.meta.events.register("before-call.sfn.StartExecution", fail)
    return client


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "StartExecution",
    )


def test_a_start_is_reported_and_runs(sfn: tuple[Any, str]) -> None:
    client, arn = sfn
    assert router.start_execution(client, arn, "c-1_evt-1", '{"contact_id": "c-1"}') == "started"
    [execution] = client.list_executions(stateMachineArn=arn)["executions"]
    assert execution["name"] == "c-1_evt-1"


def test_the_same_name_again_never_starts_a_second_journey(sfn: tuple[Any, str]) -> None:
    client, arn = sfn
    router.start_execution(client, arn, "c-1_evt-1", "{}")
    # Same name and input while running: Step Functions answers with the same execution.
    assert router.start_execution(client, arn, "c-1_evt-1", "{}") == "started"
    # Same name, other input (or a closed execution): ExecutionAlreadyExists, which is fine.
    assert router.start_execution(client, arn, "c-1_evt-1", '{"x": 1}') == "already_started"
    assert len(client.list_executions(stateMachineArn=arn)["executions"]) == 1


def test_a_missing_state_machine_is_permanent(sfn: tuple[Any, str]) -> None:
    client, arn = sfn
    with pytest.raises(router.StartFailed, match="StateMachineDoesNotExist"):
        router.start_execution(client, arn.replace("cart", "gone"), "n", "{}")


@pytest.mark.parametrize(
    "error",
    [
        client_error("ThrottlingException"),
        client_error("ExecutionLimitExceeded"),
        client_error("ServiceUnavailable", 503),
        client_error("Whatever", 500),
        EndpointConnectionError(endpoint_url="https://states.us-east-1.amazonaws.com"),
    ],
)
def test_throttling_and_server_errors_are_transient(sfn: tuple[Any, str], error: Exception) -> None:
    client, arn = sfn
    with pytest.raises(TransientError):
        router.start_execution(failing_with(client, error), arn, "n", "{}")


@pytest.mark.parametrize("code", ["InvalidExecutionInput", "InvalidArn"])
def test_other_refusals_are_permanent(sfn: tuple[Any, str], code: str) -> None:
    client, arn = sfn
    with pytest.raises(router.StartFailed, match=code):
        router.start_execution(failing_with(client, client_error(code)), arn, "n", "{}")
