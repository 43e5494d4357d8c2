"""`journeys stats` over HTTP against the real API function on moto, behind the local API
Gateway on 127.0.0.1: the counters, funnel, positions and timeline it prints are the
ones the statistics API computes, and the API's refusals come out as advice."""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from journeys import aws as journeys_aws
from journeys import stats
from journeys.local.gateway import LocalApi
from journeys.settings import get_settings
from journeys.stats_cli import add_commands
from journeys.store import ContactRecord, EntryRecord
from tests.functional.conftest import ROOT
from tests.helpers.aws import ACCOUNT, REGION, ROLE_ARN, load_template
from tests.helpers.lambdas import FakeLambdaContext, load_handler

KEY = "local-stats-key"
PREFIX = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:journeys-test-"
WAITING_STATE = "Checked out within 2 h?"  # a state of the compiled cart-abandonment


def run(argv: list[str]) -> int:
    """`journeys stats ...` through its own argparse registration."""
    parser = argparse.ArgumentParser(prog="journeys")
    add_commands(parser.add_subparsers())
    args = parser.parse_args(["stats", *argv])
    return int(args.run(args))


def row(text: str, first_cell: str) -> list[str]:
    for line in text.splitlines():
        if line.strip().startswith(first_cell):
            return re.split(r"\s{2,}", line.strip())
    raise AssertionError(f"no line starts with {first_cell!r} in:\n{text}")


def section(text: str, title: str) -> str:
    return text.split(f"\n{title}", 1)[1].split("\n\n", 1)[0]


@pytest.fixture
def api(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalApi]:
    """The template's API on 127.0.0.1 in front of functions/api/app.py, reading the
    compiled workflows of state_machines/ and state machines named journeys-test-<id>."""
    monkeypatch.setenv("WORKFLOW_INDEX", str(ROOT / "state_machines" / "index.json"))
    monkeypatch.setenv("STATE_MACHINE_ARN_PREFIX", PREFIX)
    monkeypatch.setenv("EVENTS_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/1/unused")
    for name in ("http_proxy", "HTTP_PROXY", "JOURNEYS_API_URL", "JOURNEYS_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    journeys_aws.clear_clients()
    handler = load_handler("api").handler

    def invoke(function: str, event: dict[str, Any]) -> dict[str, Any]:
        return dict(handler(event, FakeLambdaContext("api")))

    with LocalApi.from_template(load_template(), invoke, api_keys=[KEY], stage="local") as local:
        yield local
    journeys_aws.clear_clients()


def remote(api: LocalApi) -> list[str]:
    return ["--api", api.url, "--api-key", KEY]


@pytest.fixture
def counted(aws: dict[str, Any]) -> None:
    """Counters as journeys leave them: 4 entered cart-abandonment, 1 bought, emails went."""
    stats.increment("cart-abandonment", stats.ENTERED, 4)
    stats.increment("cart-abandonment", stats.ACTIVE, 1)
    stats.increment("cart-abandonment", stats.COMPLETED, 2)
    stats.increment("cart-abandonment", stats.GOAL, 1)
    stats.increment("cart-abandonment", stats.state_metric(WAITING_STATE), 3)
    stats.increment("cart-abandonment", stats.state_metric("Email cart reminder"), 2)
    for metric, count in (("sent", 2), ("delivered", 2), ("opened", 1), ("unsubscribed", 1)):
        stats.increment("cart-abandonment", stats.step_metric("cart-email", metric), count)


@pytest.fixture
def ana_waits(aws: dict[str, Any]) -> str:
    """Ana's cart-abandonment journey, running and waiting for her checkout: its execution."""
    sfn = boto3.client("stepfunctions", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="tokens")["QueueUrl"]
    definition = {
        "StartAt": WAITING_STATE,
        "States": {
            WAITING_STATE: {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
                "TimeoutSeconds": 60,
                "End": True,
            }
        },
    }
    machine = sfn.create_state_machine(
        name="journeys-test-cart-abandonment",
        definition=json.dumps(definition),
        roleArn=ROLE_ARN,
    )["stateMachineArn"]
    execution = str(
        sfn.start_execution(
            stateMachineArn=machine, name="ana-1", input=json.dumps({"contact_id": "ana"})
        )["executionArn"]
    )
    deadline = time.monotonic() + 10
    while not sqs.receive_message(QueueUrl=queue).get("Messages"):
        assert time.monotonic() < deadline, "the execution never reached its wait"
        time.sleep(0.05)
    ContactRecord("ana", attributes={"first_name": "Ana"}).save()
    EntryRecord(
        "ana",
        "cart-abandonment",
        entry_id="e-1",
        execution_arn=execution,
        entered_at="2026-05-04T10:00:00.000Z",
    ).save()
    return execution


def test_every_workflow_with_its_totals(
    api: LocalApi, counted: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # WHEN the marketer asks for every workflow's numbers
    assert run(remote(api)) == 0
    out = capsys.readouterr().out
    # THEN every deployed workflow has a row, by id, and cart-abandonment its counts
    index = json.loads((ROOT / "state_machines" / "index.json").read_text())["workflows"]
    cells = [line.split() for line in out.splitlines()]
    listed = [first for first, *_ in filter(None, cells) if first in index]
    assert listed == sorted(index)
    assert row(out, "cart-abandonment") == [
        "cart-abandonment", "Cart abandonment", "4", "1", "2", "1", "0", "25.0 %",
    ]  # fmt: skip
    assert row(out, "TOTAL")[1:3] == [f"{len(index)} workflows", "4"]


def test_the_local_stack_is_found_from_its_state_file(
    api: LocalApi, counted: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the state file `journeys up` writes, with the stage in the address
    (tmp_path / ".journeys").mkdir()
    state = {"api_url": f"{api.url}/local", "api_key": KEY, "aws_endpoint": "unused"}
    (tmp_path / ".journeys" / "local.json").write_text(json.dumps(state))
    assert run(["--project", str(tmp_path)]) == 0
    assert row(capsys.readouterr().out, "cart-abandonment")[2] == "4"


def test_one_workflow_funnel_messages_and_who_is_where(
    api: LocalApi, counted: None, ana_waits: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["cart-abandonment", *remote(api)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Cart abandonment (cart-abandonment)")
    assert "entered 4 · active 1 · completed 2 · goal reached 1" in out
    # THEN the funnel follows the graph: ended journeys that passed, plus Ana, who waits
    funnel = section(out, "Funnel")
    assert row(funnel, "When: added_to_cart") == ["When: added_to_cart", "trigger", "4", "0"]
    assert row(funnel, WAITING_STATE) == [WAITING_STATE, "wait_for_event", "4", "1"]
    assert row(funnel, "Email cart reminder") == ["Email cart reminder", "send_email", "2", "0"]
    # AND each send step has its message rates
    messages = section(out, "Messages")
    assert row(messages, "Email cart reminder") == [
        "Email cart reminder", "2", "2", "50.0 %", "0.0 %", "0.0 %", "50.0 %",
    ]  # fmt: skip
    assert row(messages, "Push cart reminder") == [
        "Push cart reminder",
        "0",
        "0",
        "–",
        "–",
        "–",
        "–",
    ]
    # AND Ana is listed where she is
    here = out.split("Contacts here now", 1)[1]
    assert here.startswith(" (1 running journey)")
    assert row(here, "ana")[:2] == ["ana", WAITING_STATE]


def test_positions_can_be_skipped(
    api: LocalApi, counted: None, ana_waits: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["cart-abandonment", "--no-positions", *remote(api)]) == 0
    out = capsys.readouterr().out
    assert row(section(out, "Funnel"), WAITING_STATE)[-1] == "0"
    assert "Contacts here now\nNot read (--no-positions)." in out


def test_a_contacts_timeline(
    api: LocalApi, ana_waits: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["--contact", "ana", *remote(api)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Contact ana: 1 journey, times in UTC")
    assert "Cart abandonment (cart-abandonment) · running · entered 2026-05-04 10:00:00" in out
    [step] = [line for line in out.splitlines() if WAITING_STATE in line]
    assert re.split(r"\s{2,}", step.strip())[1:] == [WAITING_STATE, "◀ here now"]
    assert "console: https://us-east-1.console.aws.amazon.com/states/home" in out


def test_json_is_the_apis_answer(
    api: LocalApi, counted: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["cart-abandonment", "--no-positions", "--json", *remote(api)]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["workflow_id"] == "cart-abandonment" and answer["positions"] is None
    assert [box["key"] for box in answer["funnel"]][:2] == ["__start__", "checked-out-within-2-h"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--api-key", "wrong"],
            "error: the API refused the key (403 Forbidden) for GET {url}/v1/stats: check "
            "--api-key or JOURNEYS_API_KEY",
        ),
        (
            ["no-such-workflow"],
            "error: workflow 'no-such-workflow' is not deployed; see GET /v1/workflows; "
            "see `journeys stats` for the workflows",
        ),
        (["--contact", "nobody"], "error: contact 'nobody' does not exist"),
        (["--api", "{url}/nope"], "error: the API has no route for GET {url}/nope/v1/stats"),
    ],
)
def test_what_the_api_refuses_is_explained(
    api: LocalApi, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [part.format(url=api.url) for part in argv]
    assert run([*remote(api), *argv]) == 1
    assert message.format(url=api.url) in capsys.readouterr().err
