"""CSV contact import without AWS: every problem of a file with its line and column, the
canonical file the state machine reads, rows as contact changes, and the import state
machine and its resources as template.yaml declares them."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import pytest

from journeys import imports
from journeys.exceptions import ImportTooLarge, InvalidImportFile
from tests.helpers.aws import load_template, resources_of_type

TEMPLATE = load_template()


def problems(body: bytes) -> list[tuple[int, str | None, str]]:
    with pytest.raises(InvalidImportFile) as refused:
        imports.read_upload(body)
    assert refused.value.total == len(refused.value.problems)
    return refused.value.problems


# --- A valid file ---------------------------------------------------------------------------


def test_a_valid_file_becomes_the_canonical_file_the_map_reads() -> None:
    # GIVEN a spreadsheet export: a byte-order mark, CRLF, capitalised and alias headers,
    # padded cells, a quoted comma, a blank line and a row of empty cells
    body = (
        "\ufeffContact_ID , Email,Phone,push_token,TimeZone,tags,lists,first_name,"
        "cart_items:number,vip:Boolean\r\n"
        "user-1, ada@example.com ,+44 7700 900123,tok-1,Europe/London,vip; newsletter,Leads,"
        '"Lovelace, Ada",2,yes\r\n'
        "\r\n"
        ",,,,,,,,,\r\n"
        "user-2,,,,,,,Grace,,\r\n"
    ).encode()
    # WHEN it is read
    upload = imports.read_upload(body)
    # THEN the stored file has canonical names, the original line of each row, trimmed cells
    assert upload.rows == 2
    assert upload.canonical.decode() == (
        "#line,contact_id,email,sms,push,time_zone,tags,lists,first_name,cart_items:number,"
        "vip:boolean\n"
        "2,user-1,ada@example.com,+44 7700 900123,tok-1,Europe/London,vip; newsletter,Leads,"
        '"Lovelace, Ada",2,yes\n'
        "5,user-2,,,,,,,Grace,,\n"
    )


def test_the_canonical_file_reads_back_as_rows_that_make_the_same_changes() -> None:
    body = (
        b"contact_id,email,phone,email_status,time_zone,tags,lists,plan,score:number,vip:boolean\n"
        b"c-1,ADA@example.com,+44 (0)20 7946 0958,unsubscribed,Asia/Tokyo,vip;a b,Leads,pro,"
        b"-2.5,false\n"
    )
    upload = imports.read_upload(body)
    # WHEN the Map's ItemReader hands over a row (a JSON object of strings, header -> cell)
    [item] = list(csv.DictReader(io.StringIO(upload.canonical.decode())))
    headers = [key for key in item if key != imports.LINE_COLUMN]
    columns = [imports.parse_column(header) for header in headers]
    change, found = imports.row_change(columns, [item[h] for h in headers], 2)
    # THEN it is the contact change the API would make
    assert found == []
    assert change is not None and change.contact_id == "c-1" and change.line == 2
    assert change.change.model_dump(exclude_defaults=True) == {
        "attributes": {"plan": "pro", "score": -2.5, "vip": False},
        "tags": {"add": ["vip", "a b"]},
        "lists": {"subscribe": ["Leads"]},
        "channels": {
            "email": {"address": "ADA@example.com", "status": "unsubscribed"},
            "sms": {"address": "+442079460958"},
        },
        "time_zone": "Asia/Tokyo",
    }


def test_empty_cells_change_nothing() -> None:
    columns = [imports.parse_column(h) for h in ("contact_id", "email", "time_zone", "plan")]
    change, found = imports.row_change(columns, ["c-1", "", " ", ""], 2)
    assert found == [] and change is not None
    assert change.change.model_fields_set == {"attributes", "channels"}
    assert change.change.attributes == {} and change.change.channels == {}


@pytest.mark.parametrize(
    ("text", "value_type", "value"),
    [
        ("12", "number", 12),
        ("-3.50", "number", -3.5),
        ("+1e3", "number", 1000.0),
        ("02139", "text", "02139"),
        ("Yes", "boolean", True),
        ("0", "boolean", False),
    ],
)
def test_typed_columns(text: str, value_type: imports.ValueType, value: Any) -> None:
    assert imports.typed_value(text, value_type) == value
    assert type(imports.typed_value(text, value_type)) is type(value)


# --- Every problem, with its line and column ------------------------------------------------

NO_CONTACT_ID = (
    "no contact_id column: the first line names the columns, and one of them must be "
    "contact_id (your id for each contact)"
)
ATTRIBUTE_NAMES = (
    "attribute names are letters, digits and _, not starting with a digit (e.g. first_name)"
)
SAVE_AS = 'save the file as CSV UTF-8 (in Excel: Save As, "CSV UTF-8 (Comma delimited)")'
QUOTES = (
    "put values that contain commas, quotes or line breaks in double quotes, and double the "
    'quotes inside them ("")'
)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(b"email\nada@example.com\n", [(1, None, NO_CONTACT_ID)], id="no-contact-id"),
        pytest.param(
            b"contact_id,,email\nc1,x,a@b.co\n",
            [(1, None, "column 2 has no name; name every column")],
            id="unnamed-column",
        ),
        pytest.param(
            b"contact_id,First Name\nc1,Ada\n",
            [
                (
                    1,
                    None,
                    f'column 2 "First Name" is not a column name: {ATTRIBUTE_NAMES}. '
                    'Did you mean "first_name"?',
                )
            ],
            id="attribute-name",
        ),
        pytest.param(
            b"Contact ID,email\nc1,a@b.co\n",
            [
                (
                    1,
                    None,
                    f'column 1 "Contact ID" is not a column name: {ATTRIBUTE_NAMES}. '
                    'Did you mean "contact_id"?',
                ),
                (1, None, NO_CONTACT_ID),
            ],
            id="contact-id-misspelt",
        ),
        pytest.param(
            b"contact_id,age:int\nc1,3\n",
            [
                (
                    1,
                    None,
                    'column 2 "age:int": unknown type "int"; write name:number, name:boolean '
                    "or name (text)",
                )
            ],
            id="unknown-type",
        ),
        pytest.param(
            b"contact_id,email:number\nc1,3\n",
            [(1, None, 'column 2 "email:number": email takes no type; remove ":number"')],
            id="typed-channel",
        ),
        pytest.param(
            b"contact_id,phone,SMS\nc1,+447700900123,+447700900123\n",
            [(1, None, 'column 3 "SMS" is the same column as column 2 "phone"; keep one of them')],
            id="same-column-twice",
        ),
        pytest.param(
            b"contact_id,cart_items:number\nc1,12,5\n",
            [
                (
                    2,
                    None,
                    "3 fields, but the header (line 1) names 2 columns; put values that contain "
                    "commas in double quotes",
                )
            ],
            id="field-count",
        ),
        pytest.param(
            b"contact_id,email\n,a@b.co\n",
            [(2, "contact_id", "is empty; every row needs a contact_id")],
            id="empty-contact-id",
        ),
        pytest.param(
            b"contact_id,email\nuser 42,a@b.co\n",
            [
                (
                    2,
                    "contact_id",
                    "'user 42': contact ids are 1 to 256 characters without spaces, control "
                    "characters or /",
                )
            ],
            id="contact-id-with-space",
        ),
        pytest.param(
            b"contact_id,email\nc1,a@b.co\nc2,b@b.co\nc1,c@b.co\n",
            [(4, "contact_id", "'c1' is also on line 2; list each contact once")],
            id="duplicate-contact",
        ),
        pytest.param(
            b"contact_id,email\nc1,not-an-email\n",
            [(2, "email", "'not-an-email' is not an email address like ada@example.com")],
            id="email",
        ),
        pytest.param(
            b"contact_id,phone\nc1,07700 900123\n",
            [(2, "sms", "'07700 900123' is not an E.164 phone number like +447700900123")],
            id="phone",
        ),
        pytest.param(
            b"contact_id,email_status\nc1,maybe\n",
            [(2, "email_status", "'maybe' is not subscribed or unsubscribed")],
            id="consent",
        ),
        pytest.param(
            b"contact_id,time_zone\nc1,Europe/Londn\n",
            [
                (
                    2,
                    "time_zone",
                    "unknown time zone 'Europe/Londn'; use an IANA name like Europe/Paris. "
                    'Did you mean "Europe/London"?',
                )
            ],
            id="time-zone",
        ),
        pytest.param(
            b"contact_id,tags\nc1,vip;-bad\n",
            [(2, "tags", "'-bad': names are letters, digits, spaces and _ . -")],
            id="tag",
        ),
        pytest.param(
            b'contact_id,cart_items:number\nc1,"12,5"\n',
            [
                (
                    2,
                    "cart_items:number",
                    "'12,5' is not a number: write digits with a . for decimals (1250.5), at "
                    "most 38 of them",
                )
            ],
            id="number",
        ),
        pytest.param(
            b"contact_id,vip:boolean\nc1,maybe\n",
            [(2, "vip:boolean", "'maybe' is not true or false (or yes/no, 1/0)")],
            id="boolean",
        ),
        pytest.param(
            b"contact_id,first_name\nc1,Jos\xe9\n",
            [(2, None, f"byte 28 is not UTF-8; {SAVE_AS}")],
            id="latin-1",
        ),
        pytest.param(
            "contact_id,first_name\nc1,Jos\ufffd\n".encode(),
            [(2, None, f"a character is not UTF-8 (it arrived as \ufffd); {SAVE_AS}")],
            id="replacement-character",
        ),
        pytest.param(
            b'contact_id,note\nc1,"a"b\n',
            [(2, None, f"not valid CSV (',' expected after '\"'): {QUOTES}")],
            id="stray-quote",
        ),
        pytest.param(
            b"",
            [
                (
                    1,
                    None,
                    "the file is empty; the first line names the columns (contact_id, email, ...)",
                )
            ],
            id="empty",
        ),
        pytest.param(
            b"contact_id,email\n\n",
            [(1, None, "no contacts: the file has a header but no rows")],
            id="header-only",
        ),
    ],
)
def test_a_bad_file_is_refused_with_every_problem(
    body: bytes, expected: list[tuple[int, str | None, str]]
) -> None:
    assert problems(body) == expected


def test_every_problem_of_every_row_is_found_at_once() -> None:
    body = b"contact_id,email,time_zone\nc1,bad,Mars/Base\n,ok@b.co,\nc3,c@b.co,UTC,x\n"
    assert [(line, column) for line, column, _ in problems(body)] == [
        (2, "email"),
        (2, "time_zone"),
        (3, "contact_id"),
        (4, None),
    ]


def test_the_problems_listed_are_capped_and_all_are_counted() -> None:
    body = b"contact_id,email\n" + b"".join(b"c%d,bad\n" % n for n in range(60))
    with pytest.raises(InvalidImportFile) as refused:
        imports.read_upload(body)
    assert refused.value.total == 60
    assert len(refused.value.problems) == imports.MAX_LISTED_PROBLEMS == 50
    assert refused.value.problems[-1][0] == 51  # the 50th bad row


def test_a_file_over_the_size_limit_is_refused_before_it_is_read() -> None:
    body = b"contact_id\n" + b"x" * imports.MAX_FILE_BYTES
    with pytest.raises(ImportTooLarge, match=r"the limit is 4194304 \(4 MiB\): split it"):
        imports.read_upload(body)


def test_a_file_over_the_row_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports, "MAX_ROWS", 3)
    body = b"contact_id\n" + b"".join(b"c%d\n" % n for n in range(4))
    with pytest.raises(ImportTooLarge, match="more than 3 rows; split it into files of at most 3"):
        imports.read_upload(body)


def test_a_row_too_large_for_a_batch_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports, "MAX_ROW_BYTES", 100)
    body = b"contact_id,note\nc1,short\nc2," + b"x" * 200 + b"\n"
    assert problems(body) == [(3, None, "the row is 246 bytes; the limit is 100")]


def test_problems_read_as_sentences() -> None:
    assert imports.describe((3, "email", "'x' is bad")) == "line 3, column email: 'x' is bad"
    assert imports.describe((1, None, "no rows")) == "line 1: no rows"


# --- Ids and batches ------------------------------------------------------------------------


def test_import_ids_are_valid_execution_names_and_sort_by_time() -> None:
    from datetime import UTC, datetime

    first = imports.new_import_id(datetime(2026, 5, 4, 10, 15, tzinfo=UTC))
    later = imports.new_import_id(datetime(2026, 5, 4, 10, 16, tzinfo=UTC))
    assert re.fullmatch(imports.IMPORT_ID_PATTERN, first)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,80}", first)  # Step Functions execution names
    assert first.startswith("imp-20260504T101500-") and first < later


def test_a_batch_marker_depends_only_on_its_rows() -> None:
    assert (
        imports.marker_key([7, 2, 101])
        == imports.marker_key([2, 101, 7])
        == ("batch#0000002-0000101")
    )


def test_an_item_without_its_line_is_not_from_an_import_file() -> None:
    with pytest.raises(ValueError, match="without a #line column"):
        imports.import_batch(
            {
                "Items": [{"contact_id": "c1"}],
                "BatchInput": {"import_id": "imp-20260504T101500-0123456789ab"},
            },
            settings=None,  # type: ignore[arg-type]  # rejected before any setting is read
        )


# --- The import state machine in template.yaml ----------------------------------------------


def definition() -> dict[str, Any]:
    machine = TEMPLATE["Resources"]["ImportStateMachine"]["Properties"]
    return dict(machine["Definition"])


def test_the_map_reads_the_stored_csv_in_batches_for_the_import_function() -> None:
    states = definition()["States"]
    assert list(states) == ["Import rows"]
    rows = states["Import rows"]
    assert rows["ItemReader"] == {
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
        "Parameters": {"Bucket.$": "$.bucket", "Key.$": "$.key"},
    }
    assert rows["ItemBatcher"]["MaxItemsPerBatch"] == imports.ROWS_PER_BATCH
    assert rows["ItemBatcher"]["MaxInputBytesPerBatch"] <= 256 * 1024
    # the largest row the API accepts always fits in a batch
    assert rows["ItemBatcher"]["MaxInputBytesPerBatch"] > imports.MAX_ROW_BYTES
    assert rows["ItemBatcher"]["BatchInput"] == {
        "import_id.$": "$.import_id",
        "workflow_id.$": "$.workflow_id",
    }
    assert rows["ItemProcessor"]["ProcessorConfig"] == {
        "Mode": "DISTRIBUTED",
        "ExecutionType": "EXPRESS",
    }
    assert rows["ResultPath"] is None and rows["End"] is True
    assert 0 < rows["ToleratedFailurePercentage"] <= 10


def test_the_import_asks_for_at_most_half_the_start_execution_refill() -> None:
    rows = definition()["States"]["Import rows"]
    assert rows["MaxConcurrency"] * imports.ROWS_PER_SECOND <= 300 / 2


def test_a_batch_retries_what_may_pass_and_returns_nothing() -> None:
    processor = definition()["States"]["Import rows"]["ItemProcessor"]
    [name] = processor["States"]
    task = processor["States"][name]
    assert processor["StartAt"] == name == "Import a batch of rows"
    assert task["Resource"] == "arn:aws:states:::lambda:invoke"
    assert task["Parameters"] == {
        "FunctionName": "${ImportContactsFunctionArn}",
        "Payload.$": "$",
    }
    assert task["OutputPath"] is None
    [retry] = task["Retry"]
    assert "TransientError" in retry["ErrorEquals"]
    assert "Lambda.TooManyRequestsException" in retry["ErrorEquals"]
    # an Express child lives 5 minutes: the retries' waits must leave time to run
    waits = sum(
        retry["IntervalSeconds"] * retry["BackoffRate"] ** n for n in range(retry["MaxAttempts"])
    )
    assert waits < 120


def test_the_machine_is_not_mistaken_for_a_workflow() -> None:
    machine = TEMPLATE["Resources"]["ImportStateMachine"]["Properties"]
    assert machine["Name"] == {"Fn::Sub": "journeys-import-${Stage}"}
    assert not machine["Name"]["Fn::Sub"].startswith("journeys-${Stage}-")
    assert machine["Type"] == "STANDARD" and machine["Tracing"] == {"Enabled": True}
    assert set(machine["DefinitionSubstitutions"]) == set(
        re.findall(r"\$\{(\w+)\}", json.dumps(machine["Definition"]))
    )


def test_the_machine_may_read_the_files_and_run_its_own_children_only() -> None:
    policies = TEMPLATE["Resources"]["ImportStateMachine"]["Properties"]["Policies"]
    assert {"LambdaInvokePolicy": {"FunctionName": {"Ref": "ImportContactsFunction"}}} in policies
    statements = [s for p in policies for s in p.get("Statement", [])]
    granted = {
        action: statement["Resource"]
        for statement in statements
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    }
    assert granted["s3:GetObject"] == {"Fn::Sub": "${ImportsBucket.Arn}/imports/*"}
    assert granted["states:StartExecution"]["Fn::Sub"].endswith(
        ":stateMachine:journeys-import-${Stage}"
    )
    assert granted["states:DescribeExecution"]["Fn::Sub"].endswith(
        ":execution:journeys-import-${Stage}/*"
    )


def test_the_bucket_is_private_encrypted_tls_only_and_forgets_files() -> None:
    bucket = TEMPLATE["Resources"]["ImportsBucket"]["Properties"]
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    [rule] = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    [expiry] = bucket["LifecycleConfiguration"]["Rules"]
    assert expiry["Prefix"] == imports.KEY_PREFIX and expiry["ExpirationInDays"] <= 7
    [deny] = TEMPLATE["Resources"]["ImportsBucketPolicy"]["Properties"]["PolicyDocument"][
        "Statement"
    ]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_only_the_import_routes_may_store_files_and_start_imports() -> None:
    functions = resources_of_type(TEMPLATE, "AWS::Serverless::Function")
    holders = {
        name
        for name, function in functions.items()
        for policy in function["Properties"].get("Policies", [])
        if isinstance(policy, dict)
        for statement in policy.get("Statement", [])
        if "s3:PutObject" in json.dumps(statement["Action"])
    }
    assert holders == {"ImportApiFunction"}
    routes = functions["ImportApiFunction"]["Properties"]["Events"]
    assert {(e["Properties"]["Path"], e["Properties"]["Method"]) for e in routes.values()} == {
        ("/v1/imports", "POST"),
        ("/v1/imports/{import_id}", "GET"),
    }
    api = TEMPLATE["Resources"]["Api"]["Properties"]
    assert "text~1csv" in api["BinaryMediaTypes"]
