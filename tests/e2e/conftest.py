from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from journeys.local.stack import LocalStack
from tests.helpers.aws import REGION, create_queues, create_tables, load_template
from tests.helpers.local import WORKDAY_MORNING, Journeys

ROOT = Path(__file__).resolve().parents[2]


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


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack]:
    """The whole product on 127.0.0.1, shared by the session (deploying takes seconds)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    stack = LocalStack(ROOT, time_scale=3600, start_time=WORKDAY_MORNING, quiet=True)
    with stack:
        yield stack


@pytest.fixture
def journeys(local_stack: LocalStack) -> Iterator[Journeys]:
    """A scenario on the local stack: fresh contacts, journey time at a workday morning."""
    scenario = Journeys(local_stack)
    scenario.at(WORKDAY_MORNING, speed=3600)
    yield scenario
    scenario.stop_all()
