"""Enqueueing for the router on moto; refused entries are injected into SQS's real answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from journeys import api, events_queue
from journeys.api import ApiError
from journeys.exceptions import TransientError
from tests.helpers.aws import REGION, drain


@pytest.fixture
def queue() -> Iterator[tuple[Any, str]]:
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        yield sqs, sqs.create_queue(QueueName="events")["QueueUrl"]


def refuse(sqs: Any, answers: list[list[dict[str, Any]]]) -> list[list[str]]:
    """Make SQS report the given entries as failed, one list per call; record each call."""
    calls: list[list[str]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append([entry["Id"] for entry in params["Entries"]])

    def after(parsed: dict[str, Any], **_: Any) -> None:
        if answers:
            failed = answers.pop(0)
            refused = {entry["Id"] for entry in failed}
            parsed["Successful"] = [
                s for s in parsed.get("Successful", []) if s["Id"] not in refused
            ]
            parsed["Failed"] = failed

    sqs.meta.events.register("provide-client-params.sqs.SendMessageBatch", record)
    sqs.meta.events.register("after-call.sqs.SendMessageBatch", after)
    return calls


def test_every_body_arrives_in_batches(queue: tuple[Any, str]) -> None:
    sqs, url = queue
    assert events_queue.enqueue(sqs, url, [f'{{"n": {n}}}' for n in range(25)]) == 25
    assert sorted(int(body["n"]) for body in drain(sqs, url)) == list(range(25))


def test_refused_entries_are_sent_again(queue: tuple[Any, str]) -> None:
    sqs, url = queue
    calls = refuse(sqs, [[{"Id": "1", "SenderFault": False, "Code": "InternalError"}]])
    events_queue.enqueue(sqs, url, ['{"n": 0}', '{"n": 1}', '{"n": 2}'])
    assert calls == [["0", "1", "2"], ["1"]]


def test_what_never_goes_is_transient(queue: tuple[Any, str]) -> None:
    sqs, url = queue
    always = {"Id": "0", "SenderFault": False, "Code": "InternalError"}
    calls = refuse(sqs, [[always], [always], [always]])
    with pytest.raises(TransientError):
        events_queue.enqueue(sqs, url, ['{"n": 0}'])
    assert len(calls) == 3


def test_a_wrong_message_is_not_sent_again(queue: tuple[Any, str]) -> None:
    sqs, url = queue
    calls = refuse(sqs, [[{"Id": "0", "SenderFault": True, "Code": "InvalidMessageContents"}]])
    with pytest.raises(TransientError):
        events_queue.enqueue(sqs, url, ['{"n": 0}'])
    assert len(calls) == 1


def test_the_api_answers_503_when_messages_never_go(queue: tuple[Any, str]) -> None:
    sqs, url = queue
    always = {"Id": "0", "SenderFault": False, "Code": "InternalError"}
    refuse(sqs, [[always], [always], [always]])
    with pytest.raises(ApiError) as caught:
        api.enqueue(sqs, url, ['{"n": 0}'])
    assert caught.value.status == 503


def test_a_missing_queue_is_named() -> None:
    with pytest.raises(RuntimeError, match="EVENTS_QUEUE_URL"):
        events_queue.enqueue(None, "", ["{}"])
