from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.helpers.aws import REGION, create_queues, create_tables, load_template


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
