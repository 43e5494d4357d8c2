"""CSV contact import on moto: the upload through the API handler (a bad file writes
nothing), the import function on batches shaped as the Distributed Map's ItemBatcher hands
them over, the counts and status, and what moto's Step Functions interpreter makes of the
import state machine."""

from __future__ import annotations

import base64
import csv
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from journeys import api as journeys_api
from journeys import aws as journeys_aws
from journeys import imports, router
from journeys.exceptions import TransientError
from journeys.settings import Settings, get_settings
from journeys.store import ContactRecord, EntryRecord, plain
from tests.helpers.aws import (
    ACCOUNT,
    REGION,
    ROLE_ARN,
    drain,
    load_template,
    moto_runnable,
    state_machine_definition,
)
from tests.helpers.lambdas import invoke

MACHINE_PREFIX = "journeys-test-"
ARN_PREFIX = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{MACHINE_PREFIX}"
IMPORT_MACHINE = "journeys-import-test"
IMPORT_MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{IMPORT_MACHINE}"
WAIT_A_MINUTE = {
    "StartAt": "Wait",
    "States": {"Wait": {"Type": "Wait", "Seconds": 60, "End": True}},
}
INDEX: dict[str, Any] = {
    "workflows": {
        "onboarding": {
            "name": "Onboarding",
            "triggers": [{"key": "event:signed_up", "event": "signed_up"}],
            "settings": {"re_entry": "never"},
        },
        "vip": {
            "name": "VIP",
            "triggers": [{"key": "tag_added:vip", "tag_added": "vip"}],
            "settings": {"re_entry": "never"},
        },
        "ghost": {
            "name": "In the index, not deployed",
            "triggers": [{"key": "event:haunted", "event": "haunted"}],
        },
    }
}
DEPLOYED = ("onboarding", "vip")

FILE = (
    b"contact_id,Email,phone,first_name,cart_items:number,tags,lists,time_zone\r\n"
    b"ada,,,,3,vip,,\r\n"
    b"bob,Bob@Example.com,+44 7700 900123,Bob,1,vip;newsletter,Leads,Europe/London\r\n"
    b"cy,cy@example.com,,Cy,,,,\r\n"
)


@dataclass
class Importing:
    settings: Settings
    s3: Any
    sfn: Any
    sqs: Any
    queue_url: str
    bucket: str
    tables: dict[str, str]

    def executions(self, workflow_id: str) -> list[dict[str, Any]]:
        return list(
            self.sfn.list_executions(stateMachineArn=ARN_PREFIX + workflow_id)["executions"]
        )

    def stored(self, key: str) -> bytes:
        body: bytes = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body

    def keys(self) -> list[str]:
        return [o["Key"] for o in self.s3.list_objects_v2(Bucket=self.bucket).get("Contents", [])]

    def import_executions(self) -> list[dict[str, Any]]:
        return list(self.sfn.list_executions(stateMachineArn=IMPORT_MACHINE_ARN)["executions"])

    def execution_input(self, import_id: str) -> dict[str, Any]:
        arn = imports.execution_arn(IMPORT_MACHINE_ARN, import_id)
        return dict(json.loads(self.sfn.describe_execution(executionArn=arn)["input"]))

    def items(self, import_id: str) -> list[dict[str, str]]:
        """The rows as the Map's CSV ItemReader (header row first) hands them over."""
        key = self.execution_input(import_id)["key"]
        return list(csv.DictReader(io.StringIO(self.stored(key).decode("utf-8"))))

    def batches(self, import_id: str) -> list[dict[str, Any]]:
        """The ItemBatcher's events: 100 items each, with the BatchInput of the ASL."""
        given = self.execution_input(import_id)
        items = self.items(import_id)
        batch_input = {"import_id": given["import_id"], "workflow_id": given["workflow_id"]}
        return [
            {"Items": items[start : start + imports.ROWS_PER_BATCH], "BatchInput": batch_input}
            for start in range(0, len(items), imports.ROWS_PER_BATCH)
        ]

    def item_count(self, logical_id: str) -> int:
        client = boto3.client("dynamodb", region_name=REGION)
        return int(client.scan(TableName=self.tables[logical_id], Select="COUNT")["Count"])

    def nothing_written(self) -> bool:
        return (
            self.keys() == []
            and self.item_count("ImportsTable") == 0
            and self.item_count("ContactsTable") == 0
            and self.import_executions() == []
            and drain(self.sqs, self.queue_url) == []
        )


def create_import_machine(sfn: Any, definition: dict[str, Any]) -> None:
    sfn.create_state_machine(
        name=IMPORT_MACHINE, definition=json.dumps(definition), roleArn=ROLE_ARN
    )


def the_import_definition(**values: str) -> dict[str, Any]:
    return state_machine_definition(load_template(), "ImportStateMachine", values)


@pytest.fixture
def importing(
    aws: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Importing]:
    """The aws fixture plus the router's queue, a workflow index with deployed machines,
    and the environment of the import routes and function (the import machine is created
    per test: moto cannot create the real one, see the last tests)."""
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="journeys-events-test")["QueueUrl"]
    index = tmp_path / "index.json"
    index.write_text(json.dumps(INDEX), encoding="utf-8")
    for name, value in {
        "EVENTS_QUEUE_URL": queue_url,
        "WORKFLOW_INDEX": str(index),
        "STATE_MACHINE_ARN_PREFIX": ARN_PREFIX,
        "IMPORT_STATE_MACHINE_ARN": IMPORT_MACHINE_ARN,
        "PUBLIC_BASE_URL": "https://api.example.com/dev",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    journeys_aws.clear_clients()
    imports._client.cache_clear()
    sfn = boto3.client("stepfunctions", region_name=REGION)
    for workflow_id in DEPLOYED:
        sfn.create_state_machine(
            name=MACHINE_PREFIX + workflow_id,
            definition=json.dumps(WAIT_A_MINUTE),
            roleArn=ROLE_ARN,
        )
    settings = get_settings()
    router.bind(settings)
    imports.bind(settings)
    yield Importing(
        settings,
        boto3.client("s3", region_name=REGION),
        sfn,
        sqs,
        queue_url,
        aws["buckets"]["ImportsBucket"],
        aws["tables"],
    )
    journeys_aws.clear_clients()
    imports._client.cache_clear()


@pytest.fixture
def waiting_machine(importing: Importing) -> Importing:
    """An import machine whose executions stay RUNNING while a test looks."""
    create_import_machine(importing.sfn, WAIT_A_MINUTE)
    return importing


# --- Calling the API handler ----------------------------------------------------------------


@dataclass
class Reply:
    status: int
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)


def request(
    method: str,
    path: str,
    body: str | None = None,
    *,
    query: dict[str, str] | None = None,
    content_type: str = "text/csv",
    base64_encoded: bool = False,
) -> Reply:
    headers = {"Content-Type": content_type, "x-api-key": "key"}
    event = {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "api1",
            "httpMethod": method,
            "path": f"/dev{path}",
            "requestId": "request-1",
            "resourcePath": path,
            "stage": "dev",
            "identity": {"sourceIp": "203.0.113.7"},
        },
        "body": body,
        "isBase64Encoded": base64_encoded,
    }
    response = invoke("api", event)
    return Reply(response["statusCode"], response["body"])


def post_csv(body: bytes, workflow_id: str | None = None, **options: Any) -> Reply:
    query = {"workflow_id": workflow_id} if workflow_id else None
    # API Gateway base64-encodes text/csv (a binary media type of the API).
    encoded = base64.b64encode(body).decode("ascii")
    return request("POST", "/v1/imports", encoded, query=query, base64_encoded=True, **options)


def status(import_id: str) -> Reply:
    return request("GET", f"/v1/imports/{import_id}", content_type="application/json")


def wait_until_stopped(importing: Importing, import_id: str) -> str:
    arn = imports.execution_arn(IMPORT_MACHINE_ARN, import_id)
    for _ in range(100):
        found = str(importing.sfn.describe_execution(executionArn=arn)["status"])
        if found != "RUNNING":
            return found
        time.sleep(0.05)
    raise AssertionError("the import execution never stopped")


# --- POST /v1/imports -----------------------------------------------------------------------


def test_a_valid_file_is_stored_canonically_and_its_import_started(
    waiting_machine: Importing,
) -> None:
    # WHEN a file is uploaded for the onboarding workflow
    reply = post_csv(FILE, "onboarding")
    # THEN it is accepted with where to follow it
    assert reply.status == 202, reply.text
    accepted = reply.json
    import_id = accepted["import_id"]
    assert accepted == {
        "import_id": import_id,
        "rows": 3,
        "workflow_id": "onboarding",
        "status_url": f"https://api.example.com/dev/v1/imports/{import_id}",
    }
    # AND the canonical file is stored, the import machine runs under the import's id
    key = f"imports/{import_id}.csv"
    assert waiting_machine.keys() == [key]
    assert waiting_machine.stored(key) == imports.read_upload(FILE).canonical
    [execution] = waiting_machine.import_executions()
    assert execution["name"] == import_id
    assert waiting_machine.execution_input(import_id) == {
        "bucket": waiting_machine.bucket,
        "key": key,
        "workflow_id": "onboarding",
        "import_id": import_id,
    }
    # AND nothing is imported yet: that is the state machine's work
    assert waiting_machine.item_count("ContactsTable") == 0
    assert drain(waiting_machine.sqs, waiting_machine.queue_url) == []


def test_without_a_workflow_the_machine_gets_a_null_workflow(waiting_machine: Importing) -> None:
    reply = post_csv(FILE)
    assert reply.status == 202, reply.text
    assert reply.json["workflow_id"] is None
    assert waiting_machine.execution_input(reply.json["import_id"])["workflow_id"] is None


def test_a_file_arriving_as_text_is_read_as_utf_8(waiting_machine: Importing) -> None:
    # GIVEN a client sending another content type than text/csv: API Gateway passes text
    body = "contact_id,first_name\nc-1,José\n"
    reply = request("POST", "/v1/imports", body, content_type="application/vnd.ms-excel")
    assert reply.status == 202, reply.text
    stored = waiting_machine.stored(f"imports/{reply.json['import_id']}.csv")
    assert stored.decode("utf-8") == "#line,contact_id,first_name\n2,c-1,José\n"


def test_a_file_larger_than_a_json_body_is_accepted(waiting_machine: Importing) -> None:
    rows = b"".join(b"user-%06d,user%06d@example.com\n" % (n, n) for n in range(12_000))
    body = b"contact_id,email\n" + rows
    assert len(body) > journeys_api.MAX_BODY_BYTES
    reply = post_csv(body)
    assert reply.status == 202, reply.text
    assert reply.json["rows"] == 12_000


@pytest.mark.parametrize(
    ("body", "says", "loc"),
    [
        pytest.param(
            b"contact_id,email\nc1,a@example.com\nc1,b@example.com\n",
            "line 3, column contact_id: 'c1' is also on line 2; list each contact once",
            ["body", 3, "contact_id"],
            id="duplicate-contact",
        ),
        pytest.param(
            b"contact_id,email\nc1,a@example\n",
            "line 2, column email: 'a@example' is not an email address like ada@example.com",
            ["body", 2, "email"],
            id="bad-email",
        ),
        pytest.param(
            b"contact_id,email\nc1,a@example.com,x\n",
            "line 2: 3 fields, but the header (line 1) names 2 columns",
            ["body", 2, "row"],
            id="field-count",
        ),
        pytest.param(
            b"email\na@example.com\n",
            "line 1: no contact_id column",
            ["body", 1, "row"],
            id="no-contact-id",
        ),
        pytest.param(
            b"contact_id,time_zone\nc1,Paris\n",
            "line 2, column time_zone: unknown time zone 'Paris'",
            ["body", 2, "time_zone"],
            id="time-zone",
        ),
        pytest.param(
            b"contact_id,first_name\nc1,Jos\xe9\n",
            "line 2: byte 28 is not UTF-8; save the file as CSV UTF-8",
            ["body", 2, "row"],
            id="not-utf-8",
        ),
        pytest.param(b"", "line 1: the file is empty", ["body", 1, "row"], id="empty"),
    ],
)
def test_a_bad_file_is_refused_with_the_reason_and_nothing_is_written(
    waiting_machine: Importing, body: bytes, says: str, loc: list[Any]
) -> None:
    reply = post_csv(body, "onboarding")
    assert reply.status == 400, reply.text
    assert reply.json["message"].startswith("the file was not imported (1 problem): ")
    assert says in reply.json["message"]
    [item] = reply.json["detail"]
    assert item["loc"] == loc and says in item["msg"]
    assert waiting_machine.nothing_written()


def test_the_refusal_lists_fifty_problems_and_counts_every_one(waiting_machine: Importing) -> None:
    body = b"contact_id,email\n" + b"".join(b"c%d,bad\n" % n for n in range(60))
    reply = post_csv(body)
    assert reply.status == 400
    message = reply.json["message"]
    assert message.startswith(
        "the file was not imported (60 problems): line 2, column email: 'bad' is not an "
        "email address like ada@example.com; line 3, column email:"
    )
    assert message.endswith("(and 55 more)")
    detail = reply.json["detail"]
    assert len(detail) == 51
    assert detail[-1]["msg"] == "10 more problems not listed; fix these and send the file again"
    assert waiting_machine.nothing_written()


def test_an_unknown_workflow_is_404_and_nothing_is_written(waiting_machine: Importing) -> None:
    reply = post_csv(FILE, "onbaording")
    assert reply.status == 404
    assert reply.json["message"] == ("workflow 'onbaording' is not deployed; see GET /v1/workflows")
    assert reply.json["detail"][0]["loc"] == ["query", "workflow_id"]
    assert waiting_machine.nothing_written()


def test_a_file_over_4_mib_is_413_and_nothing_is_written(waiting_machine: Importing) -> None:
    body = b"contact_id,note\n" + b"c1," + b"x" * imports.MAX_FILE_BYTES + b"\n"
    reply = post_csv(body)
    assert reply.status == 413
    assert reply.json["message"] == (
        f"request body is {len(body)} bytes; the limit is 4194304 (4 MiB; split the file)"
    )
    assert waiting_machine.nothing_written()


def test_a_file_over_the_row_limit_is_413(
    waiting_machine: Importing, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imports, "MAX_ROWS", 2)
    reply = post_csv(FILE)
    assert reply.status == 413
    assert reply.json["message"] == (
        "the file has more than 2 rows; split it into files of at most 2 rows"
    )
    assert waiting_machine.nothing_written()


def test_a_body_that_is_not_csv_is_415(waiting_machine: Importing) -> None:
    reply = request("POST", "/v1/imports", '{"contacts": []}', content_type="application/json")
    assert reply.status == 415
    assert reply.json["message"] == "send the CSV file as the body with Content-Type: text/csv"
    assert waiting_machine.nothing_written()


def test_a_throttled_start_is_503_to_retry(waiting_machine: Importing) -> None:
    # GIVEN Step Functions throttles StartExecution (the API's own client)
    def throttle(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "ThrottlingException", "Message": "slow down"}},
            "StartExecution",
        )

    client = journeys_api.aws_client("stepfunctions", REGION)
    client.meta.events.register("before-call.sfn.StartExecution", throttle)
    reply = post_csv(FILE)
    assert reply.status == 503
    assert reply.json["message"] == "temporarily unavailable; retry the request"
    assert waiting_machine.import_executions() == []


# --- GET /v1/imports/<id> -------------------------------------------------------------------


def test_the_status_of_a_running_import(waiting_machine: Importing) -> None:
    import_id = post_csv(FILE, "onboarding").json["import_id"]
    reply = status(import_id)
    assert reply.status == 200, reply.text
    got = reply.json
    assert got.pop("created_at").endswith("Z")
    assert got == {
        "import_id": import_id,
        "status": "RUNNING",
        "workflow_id": "onboarding",
        "stopped_at": None,
        "rows": 3,
        "processed": 0,
        "contacts_created": 0,
        "contacts_updated": 0,
        "contacts_unchanged": 0,
        "journeys_started": 0,
        "journeys_skipped": 0,
        "failed": 0,
        "not_processed": 3,
        "failures": [],
        "error": None,
    }


def test_a_failed_import_says_why(importing: Importing) -> None:
    create_import_machine(
        importing.sfn,
        {
            "StartAt": "Import rows",
            "States": {
                "Import rows": {
                    "Type": "Fail",
                    "Error": "ImportBroke",
                    "Cause": "too many batches failed",
                }
            },
        },
    )
    import_id = post_csv(FILE).json["import_id"]
    assert wait_until_stopped(importing, import_id) == "FAILED"
    got = status(import_id).json
    assert got["status"] == "FAILED"
    assert got["error"] == "ImportBroke: too many batches failed"
    assert got["stopped_at"].endswith("Z")
    assert got["not_processed"] == 3


@pytest.mark.parametrize("import_id", ["imp-20260504T101500-0123456789ab", "nope", "..%2F"])
def test_an_unknown_import_is_404(waiting_machine: Importing, import_id: str) -> None:
    reply = status(import_id)
    assert reply.status == 404
    assert reply.json["message"] == (
        f"no import {import_id!r}; use the import_id POST /v1/imports answered"
    )


# --- The import function, on the batches the Map hands over ---------------------------------


@pytest.fixture
def ada(importing: Importing) -> None:
    """An existing contact, already in onboarding (re-entry: never)."""
    ContactRecord(
        "ada",
        attributes={"first_name": "Ada", "cart_items": 1},
        tags={},
        lists={},
        segments={},
        channels={"email": {"address": "ada@example.com", "status": "subscribed"}},
        time_zone="Europe/London",
        created_at="2026-01-01T00:00:00.000000Z",
        updated_at="2026-01-01T00:00:00.000000Z",
    ).save()
    EntryRecord(
        "ada",
        "onboarding",
        entry_id="onboarding_ada_signup",
        entered_at="2026-01-01T00:00:00.000000Z",
        status="running",
    ).save()


def contact(contact_id: str) -> dict[str, Any]:
    record = ContactRecord.get(contact_id, consistent_read=True)
    return {
        name: plain(getattr(record, name))
        for name in ("attributes", "tags", "lists", "channels", "time_zone")
    }


def test_a_batch_creates_and_updates_contacts_and_starts_their_journeys(
    waiting_machine: Importing, ada: None
) -> None:
    # GIVEN an upload for onboarding
    import_id = post_csv(FILE, "onboarding").json["import_id"]
    [batch] = waiting_machine.batches(import_id)
    assert [item["#line"] for item in batch["Items"]] == ["2", "3", "4"]
    # WHEN the Map hands the batch to the import function
    summary = invoke("import_contacts", batch)
    # THEN Bob and Cy are created, Ada updated
    assert summary == {
        "processed": 3,
        "contacts_created": 2,
        "contacts_updated": 1,
        "contacts_unchanged": 0,
        "journeys_started": 2,
        "journeys_skipped": 1,
        "failed": 0,
        "duplicate": False,
    }
    bob = contact("bob")
    assert bob["attributes"] == {"first_name": "Bob", "cart_items": 1}
    assert bob["channels"] == {
        "email": {"address": "Bob@Example.com", "status": "subscribed"},
        "sms": {"address": "+447700900123", "status": "subscribed"},
    }
    assert set(bob["tags"]) == {"vip", "newsletter"}
    assert bob["lists"] == {"Leads": "subscribed"}
    assert bob["time_zone"] == "Europe/London"
    assert contact("ada")["attributes"] == {"first_name": "Ada", "cart_items": 3}
    # AND Bob and Cy entered onboarding, the import named as their trigger; Ada, already
    # in it (re-entry: never), did not enter again
    executions = waiting_machine.executions("onboarding")
    assert len(executions) == 2
    inputs = [
        json.loads(waiting_machine.sfn.describe_execution(executionArn=e["executionArn"])["input"])
        for e in executions
    ]
    assert sorted(given["contact_id"] for given in inputs) == ["bob", "cy"]
    for given in inputs:
        assert given["trigger"]["key"] == f"import:{import_id}"
        assert given["trigger"]["event_id"] == f"import:{import_id}:{given['contact_id']}"
    # AND the status counts it all
    got = status(import_id).json
    assert {name: got[name] for name in ("processed", "contacts_created", "contacts_updated")} == {
        "processed": 3,
        "contacts_created": 2,
        "contacts_updated": 1,
    }
    assert (got["journeys_started"], got["journeys_skipped"], got["failed"]) == (2, 1, 0)
    assert got["not_processed"] == 0


def test_tags_from_the_file_trigger_workflows_through_the_router(
    waiting_machine: Importing, ada: None
) -> None:
    # GIVEN an import without a workflow, tagging Ada and Bob vip
    import_id = post_csv(FILE).json["import_id"]
    [batch] = waiting_machine.batches(import_id)
    invoke("import_contacts", batch)
    assert waiting_machine.executions("onboarding") == []
    # WHEN the router routes the contact changes the import queued
    queued = drain(waiting_machine.sqs, waiting_machine.queue_url)
    assert {(m["type"], m["contact_id"]) for m in queued} == {
        ("contact_changed", "ada"),
        ("contact_changed", "bob"),
        ("contact_changed", "cy"),
    }
    index = router.load_index(waiting_machine.settings.workflow_index)
    for message in queued:
        router.route(message, index, waiting_machine.settings, sfn=waiting_machine.sfn)
    # THEN the tag trigger started the vip journey of each
    started = {e["name"] for e in waiting_machine.executions("vip")}
    assert len(started) == 2


def test_a_batch_run_twice_starts_and_counts_once(waiting_machine: Importing, ada: None) -> None:
    import_id = post_csv(FILE, "onboarding").json["import_id"]
    [batch] = waiting_machine.batches(import_id)
    invoke("import_contacts", batch)
    before = status(import_id).json
    # WHEN Step Functions runs the same batch again (its answer was lost)
    again = invoke("import_contacts", batch)
    # THEN nothing is started or counted twice
    assert again["duplicate"] is True
    assert len(waiting_machine.executions("onboarding")) == 2
    assert status(import_id).json == before


def test_a_batch_retried_after_a_failure_finishes_without_a_second_journey(
    waiting_machine: Importing,
) -> None:
    import_id = post_csv(FILE, "onboarding").json["import_id"]
    [batch] = waiting_machine.batches(import_id)
    # GIVEN StartExecution is throttled from the second row on
    sfn = boto3.client("stepfunctions", region_name=REGION)
    calls: list[str] = []

    def throttle_after_the_first(**_: Any) -> None:
        calls.append("StartExecution")
        if len(calls) > 1:
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "slow down"}},
                "StartExecution",
            )

    sfn.meta.events.register("before-call.sfn.StartExecution", throttle_after_the_first)
    # WHEN the batch fails with TransientError (the ASL's Retry catches it by name)
    with pytest.raises(TransientError):
        imports.import_batch(batch, waiting_machine.settings, sfn=sfn, sleep=lambda _: None)
    assert len(waiting_machine.executions("onboarding")) == 1
    assert status(import_id).json["processed"] == 0  # a failed batch counts nothing
    # AND Step Functions retries it
    counts = imports.import_batch(batch, waiting_machine.settings, sleep=lambda _: None)
    # THEN every contact is in exactly one journey, and the batch counts once
    assert len(waiting_machine.executions("onboarding")) == 3
    assert (counts.started, counts.skipped, counts.failed) == (3, 0, 0)
    # (Ada and Bob were created by the failed attempt, before Bob's start was throttled:
    # the retry finds them as their rows say.)
    assert (counts.created, counts.unchanged) == (1, 2)
    assert status(import_id).json["journeys_started"] == 3


def test_rows_that_cannot_be_imported_are_counted_with_the_reason(
    waiting_machine: Importing,
) -> None:
    # GIVEN a batch for a workflow in the index whose state machine is not deployed, and a
    # row the API would never have accepted (the file was changed in the bucket)
    import_id = post_csv(FILE, "ghost").json["import_id"]
    [batch] = waiting_machine.batches(import_id)
    batch["Items"][2]["email"] = "not-an-email"
    # WHEN it is imported
    summary = invoke("import_contacts", batch)
    # THEN the batch does not fail: every row is counted, the failures with their reason
    assert (summary["processed"], summary["failed"], summary["journeys_started"]) == (3, 3, 0)
    got = status(import_id).json
    assert got["failed"] == 3
    reasons = {failure["line"]: failure["reason"] for failure in got["failures"]}
    assert reasons[4] == "email: 'not-an-email' is not an email address like ada@example.com"
    assert "StateMachineDoesNotExist" in reasons[2]
    assert [failure["contact_id"] for failure in got["failures"]] == ["ada", "bob", "cy"]


def test_a_workflow_gone_from_the_index_fails_its_rows(waiting_machine: Importing) -> None:
    import_id = post_csv(FILE, "onboarding").json["import_id"]
    [batch] = waiting_machine.batches(import_id)
    batch["BatchInput"]["workflow_id"] = "retired"
    summary = invoke("import_contacts", batch)
    assert (summary["contacts_created"], summary["failed"]) == (3, 3)
    [first, *_] = status(import_id).json["failures"]
    assert first == {"line": 2, "contact_id": "ada", "reason": "workflow 'retired' is not deployed"}


def test_a_batch_paces_itself_to_protect_the_start_execution_quota(
    waiting_machine: Importing,
) -> None:
    import_id = post_csv(FILE, "onboarding").json["import_id"]
    [batch] = waiting_machine.batches(import_id)
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    imports.import_batch(
        batch,
        waiting_machine.settings,
        rows_per_second=2,
        clock=lambda: clock[0],
        sleep=sleep,
    )
    assert clock[0] == pytest.approx(3 / 2)


def test_many_batches_add_up(waiting_machine: Importing) -> None:
    rows = b"".join(b"user-%d,user%d@example.com\n" % (n, n) for n in range(250))
    import_id = post_csv(b"contact_id,email\n" + rows).json["import_id"]
    batches = waiting_machine.batches(import_id)
    assert [len(batch["Items"]) for batch in batches] == [100, 100, 50]
    for batch in batches:
        imports.import_batch(batch, waiting_machine.settings, sleep=lambda _: None)
    got = status(import_id).json
    assert (got["rows"], got["processed"], got["contacts_created"]) == (250, 250, 250)
    assert got["journeys_started"] == 0 and got["not_processed"] == 0


# --- moto's Step Functions interpreter and the import machine -------------------------------


def test_motos_parser_refuses_the_real_import_machine(importing: Importing) -> None:
    """moto 5.2.5 does not know ItemBatcher (nor EXPRESS children, nor an integer
    ToleratedFailurePercentage). When this starts failing, moto learnt them: drop
    `moto_runnable` where it is used."""
    with pytest.raises(ClientError, match="ItemBatcher"):
        create_import_machine(importing.sfn, the_import_definition())


def test_motos_interpreter_reads_the_stored_file_into_the_batches_the_function_takes(
    importing: Importing,
) -> None:
    # GIVEN the import machine as moto runs it (`moto_runnable`: batches of one), its
    # batch's Lambda task replaced by a Pass (moto cannot run Lambda code), so the Map
    # returns what each batch would have been given
    definition = moto_runnable(the_import_definition())
    rows = definition["States"]["Import rows"]
    rows["ItemProcessor"]["States"]["Import a batch of rows"] = {"Type": "Pass", "End": True}
    rows.pop("ResultPath")
    create_import_machine(importing.sfn, definition)
    # WHEN a file is uploaded and the machine runs
    import_id = post_csv(FILE, "onboarding").json["import_id"]
    assert wait_until_stopped(importing, import_id) == "SUCCEEDED"
    arn = imports.execution_arn(IMPORT_MACHINE_ARN, import_id)
    batches = json.loads(importing.sfn.describe_execution(executionArn=arn)["output"])
    # THEN the S3 CSV ItemReader gave one object of strings per row, header -> cell, and
    # each came with the BatchInput of the execution
    assert [item for batch in batches for item in batch["Items"]] == importing.items(import_id)
    assert batches[1] == {
        "Items": [
            {
                "#line": "3",
                "contact_id": "bob",
                "email": "Bob@Example.com",
                "sms": "+44 7700 900123",
                "first_name": "Bob",
                "cart_items:number": "1",
                "tags": "vip;newsletter",
                "lists": "Leads",
                "time_zone": "Europe/London",
            }
        ],
        "BatchInput": {"import_id": import_id, "workflow_id": "onboarding"},
    }
    # AND the import function imports them
    summaries = [invoke("import_contacts", batch) for batch in batches]
    assert sum(summary["journeys_started"] for summary in summaries) == 3
    assert status(import_id).json["processed"] == 3
