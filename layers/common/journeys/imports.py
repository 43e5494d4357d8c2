"""CSV contact import: every row of an uploaded file becomes a contact, and optionally a
journey ("Specific users: a CSV file of contacts is uploaded and they all enter").

The flow
--------
1. ``POST /v1/imports?workflow_id=<id>`` (journeys.api) hands the body to `read_upload`,
   which checks the whole file before anything is written and reports every problem with
   its line and column. `start_import` then writes the *canonical* file (below) to S3 as
   ``imports/<import_id>.csv``, the import's summary item, and starts the import state
   machine (execution name = import id; template.yaml, ``ImportStateMachine``).
2. The state machine is a Distributed Map: the S3 CSV ItemReader reads the file, the
   ItemBatcher groups `ROWS_PER_BATCH` rows, and each batch invokes the import function
   with ``{"Items": [{"#line": "2", "contact_id": "c-1", ...}, ...],
   "BatchInput": {"import_id": ..., "workflow_id": ... or null}}``.
3. `import_batch` upserts each row's contact exactly as ``PUT /v1/contacts/{id}`` does
   (journeys.contact_updates: tag, list and attribute triggers fire through the router
   as usual), then, with a workflow, routes an ``enter_workflow`` message for the contact
   in process (`journeys.router.route`): the workflow's re-entry rule applies, and the
   event id ``import:<import_id>:<contact_id>`` makes the execution name deterministic,
   so a retried batch never starts a second journey. The batch's counts are added to
   the summary once: a batch marker item, written in the same transaction, makes a
   retried batch count nothing.
4. ``GET /v1/imports/<import_id>`` reads the counts and the execution's status
   (`import_status`).

The file
--------
UTF-8 (a byte-order mark is fine), comma-separated, the first line names the columns.
Columns are matched without regard to case or surrounding spaces:

- ``contact_id`` (required): your id for the contact; each contact once per file.
- Channel addresses: ``email``, ``sms`` (or ``phone``; E.164, "+44 7700 900123" is
  normalised), ``push`` (or ``push_token``), ``web_push``, ``in_app``, ``on_site``,
  ``whatsapp``. New channels start subscribed.
- Consent: ``<channel>_status`` (``email_status``...), ``subscribed`` or ``unsubscribed``.
- ``time_zone``: an IANA name (Europe/London).
- ``tags`` (tags to add) and ``lists`` (lists to subscribe to), several separated by ``;``.
- Every other column is an attribute, its name letters, digits and ``_``. Values are
  text; ``name:number`` stores numbers (``12``, ``-3.5``) and ``name:boolean`` stores
  true/false (true, yes, 1 / false, no, 0). Text is the default because conditions
  already read numbers and booleans written as text (journeys.conditions), while a guess
  would turn a zip code like 02139 into 2139; type a column when a step does arithmetic
  on it (``change_score`` adds to ``score``, which must then be a number).

Cells are trimmed. An empty cell changes nothing (a CSV cannot say "remove"), and lines
whose cells are all empty are skipped (spreadsheets export them).

Why a canonical file
--------------------
What the Map reads is what was validated: the stored file is re-written by Python's csv
module (RFC 4180, minimal quoting) with canonical column names (``phone`` becomes
``sms``), without the byte-order mark, blank lines or padding of the upload, and with a
first column ``#line`` holding each row's line in the uploaded file (no valid column name
starts with ``#``), so problems found later name the line the marketer sees.

Why route in process, and how fast
----------------------------------
The import function calls the router's own `route` for the ``enter_workflow`` messages
instead of queueing them: the outcome of each (started, kept out by the re-entry rule,
failed) is known and counted, and a retried batch finds them routed (the router's
marker). Contact changes (tags, lists, attributes) reach the router through its queue,
as the API's do. Each batch worker paces itself to `ROWS_PER_SECOND` rows a second and
the state machine runs at most 3 batches at once, so an import asks for at most 120
StartExecution a second for its workflow: well under the 300/s refill, leaving the rest,
and the 1,300 burst, to live events and to what the rows' changes trigger. 100,000 rows
take about 14 minutes.

Counting
--------
A batch's counts reach the summary exactly once. A batch retried after a partial failure
upserts again: contacts the failed attempt created or changed count as unchanged, and
journeys it routed count from their entry record (started if the entry is this import's,
else skipped).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import random
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal, cast

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pynamodb.attributes import ListAttribute, MapAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.expressions.update import Action
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from journeys import clock as journeys_clock
from journeys import router
from journeys.compiler.models import CHANNELS, PATTERN_HELP, AttributeName, Name
from journeys.contact_updates import (
    CONTACT_ID_HELP,
    CONTACT_ID_PATTERN,
    ContactUpsert,
    check_time_zone,
    upsert_contact,
)
from journeys.exceptions import (
    ContactTooLarge,
    ContactWriteConflict,
    ImportTooLarge,
    InvalidImportFile,
    TransientError,
)
from journeys.messaging import normalize_address
from journeys.settings import MissingSetting, Settings
from journeys.store import EntryRecord, iso

log = logging.getLogger(__name__)

#: The largest upload. The body reaches the function inside the request event (at most
#: 6 MB), base64-encoded (text/csv is a binary media type of the API): 4 MiB becomes 5.6 MB.
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_ROWS = 100_000
MAX_COLUMNS = 200
#: One row as the Map hands it over (JSON): a batch must fit the 256 KiB Step Functions
#: payload, and the ItemBatcher caps batches at 200 KiB.
MAX_ROW_BYTES = 64 * 1024
#: Problems listed in a refusal (every problem is counted).
MAX_LISTED_PROBLEMS = 50
#: Rows per batch (the ItemBatcher's MaxItemsPerBatch in template.yaml).
ROWS_PER_BATCH = 100
#: Rows one batch worker handles per second at most (see "Why route in process").
ROWS_PER_SECOND = 40.0
#: Separator of several tags or lists in one cell.
SEPARATOR = ";"
#: The first column of the stored file: the row's line in the uploaded file.
LINE_COLUMN = "#line"
KEY_PREFIX = "imports/"
#: How long an import's counts stay readable (the file itself expires after 7 days).
RECORD_TTL_SECONDS = 90 * 86400
SUMMARY = "summary"
BATCH_PREFIX = "batch#"
#: Failures kept per batch, and shown by the status.
FAILURES_PER_BATCH = 10
FAILURES_SHOWN = 20
#: Attempts at the counting transaction when concurrent batches collide on the summary.
COUNT_ATTEMPTS = 4

IMPORT_ID_PATTERN = r"^imp-\d{8}T\d{6}-[0-9a-f]{12}$"
_IMPORT_ID = re.compile(IMPORT_ID_PATTERN)

# --- Columns (pure) -------------------------------------------------------------------------

Role = Literal["contact_id", "address", "status", "time_zone", "tags", "lists", "attribute"]
ValueType = Literal["text", "number", "boolean"]
VALUE_TYPES: tuple[ValueType, ...] = ("text", "number", "boolean")
#: Other names people give these columns.
ALIASES = {"phone": "sms", "push_token": "push", "timezone": "time_zone"}
STATUSES = ("subscribed", "unsubscribed")


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its canonical header, what it sets, and for attributes the type."""

    header: str
    role: Role
    name: str
    value_type: ValueType = "text"


def _reserved(name: str) -> Column | None:
    key = ALIASES.get(name, name)
    if key == "contact_id":
        return Column(key, "contact_id", key)
    if key in CHANNELS:
        return Column(key, "address", key)
    channel = key.removesuffix("_status")
    channel = ALIASES.get(channel, channel)
    if key.endswith("_status") and channel in CHANNELS:
        return Column(f"{channel}_status", "status", channel)
    if key == "time_zone":
        return Column(key, "time_zone", key)
    if key == "tags":
        return Column(key, "tags", key)
    if key == "lists":
        return Column(key, "lists", key)
    return None


_ATTRIBUTE_NAME: TypeAdapter[str] = TypeAdapter(AttributeName)
_ATTRIBUTE_HELP = PATTERN_HELP[r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"]


def _valid_attribute(name: str) -> bool:
    try:
        _ATTRIBUTE_NAME.validate_python(name)
    except ValidationError:
        return False
    return True


def _suggestion(name: str) -> str:
    """A column name close to what was written ("Contact ID" -> contact_id)."""
    candidate = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_").lower()
    if candidate and (_reserved(candidate) is not None or _valid_attribute(candidate)):
        return f' Did you mean "{candidate}"?'
    return ""


def parse_column(text: str) -> Column:
    """The column a header cell names; ValueError says why it names none."""
    name, typed, type_text = text.partition(":")
    name = name.strip()
    reserved = _reserved(name.lower())
    if reserved is not None:
        if typed:
            raise ValueError(f'"{text}": {reserved.header} takes no type; remove ":{type_text}"')
        return reserved
    wanted = type_text.strip().lower() if typed else "text"
    value_type = next((known for known in VALUE_TYPES if known == wanted), None)
    if value_type is None:
        raise ValueError(
            f'"{text}": unknown type "{type_text.strip()}"; write name:number, name:boolean '
            "or name (text)"
        )
    if not _valid_attribute(name):
        raise ValueError(f'"{text}" is not a column name: {_ATTRIBUTE_HELP}.{_suggestion(name)}')
    header = name if value_type == "text" else f"{name}:{value_type}"
    return Column(header, "attribute", name, value_type)


# --- Problems (pure) ------------------------------------------------------------------------

#: (line, column header or None, what is wrong and how to fix it)
Problem = tuple[int, str | None, str]


def describe(problem: Problem) -> str:
    line, column, message = problem
    return f"line {line}, column {column}: {message}" if column else f"line {line}: {message}"


class _Problems:
    """The first problems found, and how many there are in all."""

    def __init__(self) -> None:
        self.listed: list[Problem] = []
        self.total = 0

    def add(self, line: int, column: str | None, message: str) -> None:
        self.total += 1
        if len(self.listed) < MAX_LISTED_PROBLEMS:
            self.listed.append((line, column, message))

    def __bool__(self) -> bool:
        return self.total > 0

    def error(self) -> InvalidImportFile:
        return InvalidImportFile(list(self.listed), self.total)


def read_header(cells: Sequence[str], line: int, problems: _Problems) -> list[Column]:
    columns: list[Column] = []
    first: dict[str, tuple[int, str]] = {}
    if len(cells) > MAX_COLUMNS:
        problems.add(line, None, f"{len(cells)} columns; the limit is {MAX_COLUMNS}")
    for number, raw in enumerate(cells, 1):
        text = raw.strip()
        if not text:
            problems.add(line, None, f"column {number} has no name; name every column")
            continue
        try:
            column = parse_column(text)
        except ValueError as error:
            problems.add(line, None, f"column {number} {error}")
            continue
        if column.header in first:
            other, said = first[column.header]
            problems.add(
                line,
                None,
                f'column {number} "{text}" is the same column as column {other} "{said}"; '
                "keep one of them",
            )
            continue
        first[column.header] = (number, text)
        columns.append(column)
    if "contact_id" not in first:
        problems.add(
            line,
            None,
            "no contact_id column: the first line names the columns, and one of them must "
            "be contact_id (your id for each contact)",
        )
    return columns


# --- Rows (pure) ----------------------------------------------------------------------------

_CONTACT_ID = re.compile(CONTACT_ID_PATTERN)
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_TRUE = ("true", "yes", "1")
_FALSE = ("false", "no", "0")
#: DynamoDB keeps 38 significant digits.
_MAX_DIGITS = 38


def typed_value(value: str, value_type: ValueType) -> Any:
    """A cell as the attribute's type; ValueError says why it is not one."""
    if value_type == "number":
        if not _NUMBER.match(value) or sum(c.isdigit() for c in value) > _MAX_DIGITS:
            raise ValueError(
                f"{value!r} is not a number: write digits with a . for decimals (1250.5), "
                "at most 38 of them"
            )
        if any(mark in value for mark in ".eE"):
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(f"{value!r} is too large a number")
            return number
        return int(value)
    if value_type == "boolean":
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError(f"{value!r} is not true or false (or yes/no, 1/0)")
    return value


def _expected_address(channel: str) -> str:
    if channel == "email":
        return "an email address like ada@example.com"
    if channel in ("sms", "whatsapp"):
        return "an E.164 phone number like +447700900123"
    return "an address"


def _names(value: str) -> list[str]:
    return [part.strip() for part in value.split(SEPARATOR) if part.strip()]


@dataclass(frozen=True, slots=True)
class RowChange:
    """A valid row: whose contact it is, and the change to make."""

    line: int
    contact_id: str
    change: ContactUpsert


#: Where ContactUpsert's own errors point (its field -> the column's role).
_ROLE_OF_FIELD: dict[str, Role] = {"tags": "tags", "lists": "lists", "time_zone": "time_zone"}


def _model_problem(error: Mapping[str, Any], columns: Sequence[Column]) -> tuple[str | None, str]:
    loc = list(error.get("loc", ()))
    role = _ROLE_OF_FIELD.get(str(loc[0])) if loc else None
    column = next((c.header for c in columns if role and c.role == role), None)
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    pattern = (error.get("ctx") or {}).get("pattern")
    if error.get("type") == "string_pattern_mismatch" and pattern in PATTERN_HELP:
        message = f"{error.get('input')!r}: {PATTERN_HELP[pattern]}"
    return column, message


_NAME: TypeAdapter[str] = TypeAdapter(Name)
_NAME_HELP = PATTERN_HELP[r"^[A-Za-z0-9][A-Za-z0-9_. -]{0,127}$"]
#: What ContactUpsert accepts: names per tags/lists change, characters per address.
_MAX_NAMES = 100
_MAX_ADDRESS = 2048
#: (column header or None, message)
RowProblem = tuple[str | None, str]


def _checked_names(column: Column, value: str, problems: list[RowProblem]) -> list[str]:
    names = _names(value)
    if len(names) > _MAX_NAMES:
        problems.append((column.header, f"{len(names)} {column.name}; at most {_MAX_NAMES}"))
    for name in names:
        try:
            _NAME.validate_python(name)
        except ValidationError:
            problems.append((column.header, f"{name!r}: {_NAME_HELP}"))
    return names


def _fields(
    columns: Sequence[Column], cells: Sequence[str]
) -> tuple[str, dict[str, Any], list[RowProblem]]:
    """Every cell checked on its own: the contact id, the ContactUpsert body, problems.
    Cheap enough for 100,000 rows in the API; `row_change` then builds the model."""
    problems: list[RowProblem] = []
    contact_id = ""
    attributes: dict[str, Any] = {}
    channels: dict[str, dict[str, str]] = {}
    body: dict[str, Any] = {"attributes": attributes, "channels": channels}
    for column, cell in zip(columns, cells, strict=True):
        value = cell.strip()
        if column.role == "contact_id":
            contact_id = value
        elif not value:
            continue
        elif column.role == "address":
            address = normalize_address(column.name, value)
            if address is None or len(address) > _MAX_ADDRESS:
                expected = _expected_address(column.name)
                problems.append((column.header, f"{value[:100]!r} is not {expected}"))
            else:
                channels.setdefault(column.name, {})["address"] = address
        elif column.role == "status":
            if value.lower() not in STATUSES:
                problems.append((column.header, f"{value!r} is not subscribed or unsubscribed"))
            else:
                channels.setdefault(column.name, {})["status"] = value.lower()
        elif column.role == "time_zone":
            try:
                body["time_zone"] = check_time_zone(value)
            except ValueError as error:
                problems.append((column.header, str(error)))
        elif column.role == "tags":
            body["tags"] = {"add": _checked_names(column, value, problems)}
        elif column.role == "lists":
            body["lists"] = {"subscribe": _checked_names(column, value, problems)}
        else:
            try:
                attributes[column.name] = typed_value(value, column.value_type)
            except ValueError as error:
                problems.append((column.header, str(error)))
    if not contact_id:
        problems.append(("contact_id", "is empty; every row needs a contact_id"))
    elif not _CONTACT_ID.match(contact_id):
        problems.append(("contact_id", f"{contact_id[:100]!r}: {CONTACT_ID_HELP}"))
    return contact_id, body, problems


def check_row(columns: Sequence[Column], cells: Sequence[str]) -> list[RowProblem]:
    """The problems of a row, each cell checked as `row_change` would accept it."""
    return _fields(columns, cells)[2]


def row_change(
    columns: Sequence[Column], cells: Sequence[str], line: int
) -> tuple[RowChange | None, list[RowProblem]]:
    """The change a row asks for, or the problems of the row as (column, message)."""
    contact_id, body, problems = _fields(columns, cells)
    if problems:
        return None, problems
    try:
        change = ContactUpsert.model_validate(body)
    except ValidationError as error:
        return None, [_model_problem(item, columns) for item in error.errors()]
    return RowChange(line, contact_id, change), []


def _row_bytes(headers: Sequence[str], cells: Sequence[str]) -> int:
    """The row's size as the Map hands it over (a JSON object)."""
    rough = sum(len(h) + len(c) for h, c in zip(headers, cells, strict=True))
    if rough * 6 < MAX_ROW_BYTES:  # escaping grows a character to 6 at most
        return rough
    return len(json.dumps(dict(zip(headers, cells, strict=True))).encode("utf-8"))


# --- The upload (pure) ----------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """A validated file: its columns, how many rows, the canonical file the state machine
    reads."""

    columns: tuple[Column, ...]
    rows: int
    canonical: bytes


def _records(reader: Any, problems: _Problems) -> Iterator[tuple[int, list[str]]]:
    """(first line, cells) of every record; a CSV syntax error ends the file."""
    while True:
        line = reader.line_num + 1
        try:
            cells: list[str] = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            problems.add(
                reader.line_num or line,
                None,
                f"not valid CSV ({error}): put values that contain commas, quotes or line "
                'breaks in double quotes, and double the quotes inside them ("")',
            )
            return
        yield line, cells


_SAVE_AS_UTF8 = 'save the file as CSV UTF-8 (in Excel: Save As, "CSV UTF-8 (Comma delimited)")'


def _decode(body: bytes) -> str:
    """The text of the file. Bytes that are not UTF-8 are refused; so is U+FFFD, which is
    what they become when a gateway passes a file in another encoding on as text."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = body[: error.start].count(b"\n") + 1
        message = f"byte {error.start} is not UTF-8; {_SAVE_AS_UTF8}"
        raise InvalidImportFile([(line, None, message)], 1) from None
    replaced = text.find("\ufffd")
    if replaced >= 0:
        line = text.count("\n", 0, replaced) + 1
        message = f"a character is not UTF-8 (it arrived as \ufffd); {_SAVE_AS_UTF8}"
        raise InvalidImportFile([(line, None, message)], 1)
    return text


def read_upload(body: bytes) -> Upload:
    """Check the whole file, every problem with its line and column (`InvalidImportFile`),
    or give its rows and the canonical file. `ImportTooLarge` past the limits."""
    if len(body) > MAX_FILE_BYTES:
        raise ImportTooLarge(
            f"the file is {len(body)} bytes; the limit is {MAX_FILE_BYTES} (4 MiB): split it"
        )
    text = _decode(body)
    problems = _Problems()
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    columns: list[Column] | None = None
    header_line = 0
    headers: list[str] = []
    stored: list[list[str]] = []
    first_line: dict[str, int] = {}
    data_rows = 0
    for line, cells in _records(reader, problems):
        if not any(cell.strip() for cell in cells):
            continue
        if columns is None:
            columns, header_line = read_header(cells, line, problems), line
            if problems:
                break  # rows cannot be read against a broken header
            headers = [column.header for column in columns]
            continue
        data_rows += 1
        if data_rows > MAX_ROWS:
            raise ImportTooLarge(
                f"the file has more than {MAX_ROWS} rows; split it into files of at most "
                f"{MAX_ROWS} rows"
            )
        if len(cells) != len(columns):
            problems.add(
                line,
                None,
                f"{len(cells)} fields, but the header (line {header_line}) names "
                f"{len(columns)} columns; put values that contain commas in double quotes",
            )
            continue
        cells = [cell.strip() for cell in cells]
        contact_id = next(
            cell for column, cell in zip(columns, cells, strict=True) if column.role == "contact_id"
        )
        if contact_id in first_line:
            problems.add(
                line,
                "contact_id",
                f"{contact_id!r} is also on line {first_line[contact_id]}; list each contact once",
            )
            continue
        if contact_id:
            first_line[contact_id] = line
        found = check_row(columns, cells)
        for column, message in found:
            problems.add(line, column, message)
        size = _row_bytes([LINE_COLUMN, *headers], [str(line), *cells])
        if size > MAX_ROW_BYTES:
            problems.add(line, None, f"the row is {size} bytes; the limit is {MAX_ROW_BYTES}")
        elif not found:
            stored.append([str(line), *cells])
    if columns is None and not problems:
        problems.add(
            1, None, "the file is empty; the first line names the columns (contact_id, email, ...)"
        )
    elif not stored and not problems:
        problems.add(header_line, None, "no contacts: the file has a header but no rows")
    if problems or columns is None:
        raise problems.error()
    return Upload(tuple(columns), len(stored), canonical_file(columns, stored))


def canonical_file(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> bytes:
    """The file the state machine reads: `LINE_COLUMN`, then the canonical columns."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([LINE_COLUMN, *(column.header for column in columns)])
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


# --- The import's records -------------------------------------------------------------------


class FailureMap(MapAttribute[str, Any]):
    line = NumberAttribute()
    contact_id = UnicodeAttribute()
    reason = UnicodeAttribute()


#: pynamodb's attribute constructors are untyped.
_failure = cast(Callable[..., FailureMap], FailureMap)


class ImportRecord(Model):
    """An import's summary (sort key "summary": what the API wrote, and the counters every
    batch adds to) and one marker per batch counted ("batch#<first line>-<last line>",
    with that batch's counts and failures)."""

    class Meta:
        table_name = "unbound-imports"

    import_id = UnicodeAttribute(hash_key=True)
    part = UnicodeAttribute(range_key=True)
    workflow_id = UnicodeAttribute(null=True)
    file_key = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute(null=True)
    rows = NumberAttribute(null=True)
    batches = NumberAttribute(null=True)
    processed = NumberAttribute(null=True)
    created = NumberAttribute(null=True)
    updated = NumberAttribute(null=True)
    unchanged = NumberAttribute(null=True)
    started = NumberAttribute(null=True)
    skipped = NumberAttribute(null=True)
    failed = NumberAttribute(null=True)
    failures = ListAttribute(of=FailureMap, null=True)
    expires_at = NumberAttribute(null=True)  # TTL, epoch seconds


def bind(settings: Settings) -> None:
    """Point `ImportRecord` at this deployment's imports table (call per invocation)."""
    if not settings.imports_table:
        raise MissingSetting("IMPORTS_TABLE is not set")
    meta: Any = ImportRecord.Meta
    meta.table_name = settings.imports_table
    meta.region = settings.region
    meta.host = settings.dynamodb_endpoint
    ImportRecord._connection = None


@cache
def _client(service: str, region: str) -> Any:
    return boto3.client(service, region_name=region)


def _transient(error: Exception) -> bool:
    if isinstance(error, BotoCoreError):
        return True
    if isinstance(error, PynamoDBException):
        cause = error.cause
        return isinstance(cause, Exception) and _transient(cause)
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return code in router.TRANSIENT_CODES or status >= 500
    return False


def _reraise_transient(error: Exception, what: str) -> None:
    if _transient(error):
        raise TransientError(f"{what}: {error}") from error


# --- Starting an import (the API) -----------------------------------------------------------


def new_import_id(now: datetime) -> str:
    """Sortable by time, unique, and a valid execution name."""
    return f"imp-{now.astimezone(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}"


def execution_arn(machine_arn: str, import_id: str) -> str:
    return machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + import_id


@dataclass(frozen=True, slots=True)
class StartedImport:
    import_id: str
    rows: int
    workflow_id: str | None
    key: str


def start_import(
    upload: Upload,
    workflow_id: str | None,
    settings: Settings,
    *,
    now: datetime,
    s3: Any = None,
    sfn: Any = None,
) -> StartedImport:
    """Store the canonical file, the summary, and start the import state machine.
    `TransientError` when S3, DynamoDB or Step Functions should be tried again."""
    for name, value in (
        ("IMPORTS_BUCKET", settings.imports_bucket),
        ("IMPORT_STATE_MACHINE_ARN", settings.import_state_machine_arn),
    ):
        if not value:
            raise MissingSetting(f"{name} is not set")
    bind(settings)
    import_id = new_import_id(now)
    key = f"{KEY_PREFIX}{import_id}.csv"
    try:
        (s3 or _client("s3", settings.region)).put_object(
            Bucket=settings.imports_bucket,
            Key=key,
            Body=upload.canonical,
            ContentType="text/csv; charset=utf-8",
        )
        ImportRecord(
            import_id,
            SUMMARY,
            workflow_id=workflow_id,
            file_key=key,
            created_at=iso(now),
            rows=upload.rows,
            expires_at=int(now.timestamp()) + RECORD_TTL_SECONDS,
        ).save(condition=ImportRecord.part.does_not_exist())
        (sfn or _client("stepfunctions", settings.region)).start_execution(
            stateMachineArn=settings.import_state_machine_arn,
            name=import_id,
            input=json.dumps(
                {
                    "bucket": settings.imports_bucket,
                    "key": key,
                    "workflow_id": workflow_id,
                    "import_id": import_id,
                }
            ),
        )
    except (ClientError, BotoCoreError, PynamoDBException) as error:
        _reraise_transient(error, f"starting import {import_id}")
        raise
    return StartedImport(import_id, upload.rows, workflow_id, key)


# --- An import's status ---------------------------------------------------------------------


class ImportFailure(BaseModel):
    line: int = Field(description="The row's line in the uploaded file.")
    contact_id: str
    reason: str


class ImportStatus(BaseModel):
    """Where an import is, and what it did so far."""

    import_id: str
    status: str = Field(
        description="The import state machine's execution: RUNNING, SUCCEEDED, FAILED, "
        "TIMED_OUT, ABORTED; NOT_STARTED if it could not be started."
    )
    workflow_id: str | None = None
    created_at: str | None = None
    stopped_at: str | None = None
    rows: int = Field(description="Rows in the file.")
    processed: int = Field(description="Rows handled so far (failed ones included).")
    contacts_created: int
    contacts_updated: int
    contacts_unchanged: int = Field(description="Contacts that already were as the row said.")
    journeys_started: int
    journeys_skipped: int = Field(
        description="Contacts the workflow's re-entry rule kept out (already in it)."
    )
    failed: int = Field(description="Rows that could not be imported (see failures).")
    not_processed: int = Field(
        description="Rows no batch has reported yet; after the import stopped, rows of "
        "batches that failed even after retries."
    )
    failures: list[ImportFailure] = Field(
        default_factory=list, description=f"The first {FAILURES_SHOWN} failed rows."
    )
    error: str | None = Field(None, description="Why the import stopped, if it failed.")


def _count(value: float | None) -> int:
    return int(value or 0)


def _describe(sfn: Any, arn: str) -> Mapping[str, Any] | None:
    try:
        described: Mapping[str, Any] = sfn.describe_execution(executionArn=arn)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
            return None
        _reraise_transient(error, f"DescribeExecution {arn}")
        raise
    except BotoCoreError as error:
        raise TransientError(f"DescribeExecution {arn}: {error}") from error
    return described


def _failures(import_id: str) -> list[ImportFailure]:
    shown: list[ImportFailure] = []
    for marker in ImportRecord.query(
        import_id,
        ImportRecord.part.startswith(BATCH_PREFIX),
        filter_condition=ImportRecord.failed > 0,
        consistent_read=True,
    ):
        for failure in marker.failures or []:
            shown.append(
                ImportFailure(
                    line=int(failure.line), contact_id=failure.contact_id, reason=failure.reason
                )
            )
    shown.sort(key=lambda failure: failure.line)
    return shown[:FAILURES_SHOWN]


def import_status(import_id: str, settings: Settings, sfn: Any = None) -> ImportStatus | None:
    """The import's counts and its execution's status; None if there is no such import."""
    if not _IMPORT_ID.match(import_id):
        return None
    bind(settings)
    # The status first, then the counts: a batch finishing between the two reads then
    # shows as counted under RUNNING, never as missing under SUCCEEDED.
    described = _describe(
        sfn or _client("stepfunctions", settings.region),
        execution_arn(settings.import_state_machine_arn, import_id),
    )
    try:
        summary = ImportRecord.get(import_id, SUMMARY, consistent_read=True)
    except ImportRecord.DoesNotExist:
        return None
    status = str(described["status"]) if described else "NOT_STARTED"
    stopped = described.get("stopDate") if described else None
    error = None
    if described and described.get("error"):
        error = f"{described['error']}: {described.get('cause', '')}".strip(": ")
    rows, processed = _count(summary.rows), _count(summary.processed)
    return ImportStatus(
        import_id=import_id,
        status=status,
        workflow_id=summary.workflow_id,
        created_at=summary.created_at,
        stopped_at=iso(stopped) if isinstance(stopped, datetime) else None,
        rows=rows,
        processed=processed,
        contacts_created=_count(summary.created),
        contacts_updated=_count(summary.updated),
        contacts_unchanged=_count(summary.unchanged),
        journeys_started=_count(summary.started),
        journeys_skipped=_count(summary.skipped),
        failed=_count(summary.failed),
        not_processed=max(rows - processed, 0),
        failures=_failures(import_id) if summary.failed else [],
        error=error,
    )


# --- Importing a batch (the import function) ------------------------------------------------


class ImportBatchInput(BaseModel):
    """The ItemBatcher's BatchInput: which import, and which workflow to enter."""

    model_config = ConfigDict(extra="ignore")

    import_id: str = Field(pattern=IMPORT_ID_PATTERN)
    workflow_id: str | None = None


class Batch(BaseModel):
    """What the Distributed Map's ItemBatcher hands the import function."""

    model_config = ConfigDict(extra="ignore")

    Items: list[dict[str, str]] = Field(min_length=1)
    BatchInput: ImportBatchInput


ContactOutcome = Literal["created", "updated", "unchanged", "failed"]
JourneyOutcome = Literal["started", "skipped", "none", "failed"]


@dataclass(frozen=True, slots=True)
class RowOutcome:
    line: int
    contact_id: str
    contact: ContactOutcome
    journey: JourneyOutcome = "none"
    reason: str | None = None


@dataclass
class BatchCounts:
    """What one batch did; `duplicate` when it had been counted before (a retry)."""

    processed: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    started: int = 0
    skipped: int = 0
    failed: int = 0
    failures: list[tuple[int, str, str]] = field(default_factory=list)
    duplicate: bool = False

    def add(self, outcome: RowOutcome) -> None:
        self.processed += 1
        if outcome.contact == "failed" or outcome.journey == "failed":
            self.failed += 1
            self.failures.append((outcome.line, outcome.contact_id, outcome.reason or "failed"))
        if outcome.contact in ("created", "updated", "unchanged"):
            setattr(self, outcome.contact, getattr(self, outcome.contact) + 1)
        if outcome.journey in ("started", "skipped"):
            setattr(self, outcome.journey, getattr(self, outcome.journey) + 1)

    def summary(self) -> dict[str, Any]:
        """The counts under the names `ImportStatus` gives them."""
        return {
            "processed": self.processed,
            "contacts_created": self.created,
            "contacts_updated": self.updated,
            "contacts_unchanged": self.unchanged,
            "journeys_started": self.started,
            "journeys_skipped": self.skipped,
            "failed": self.failed,
            "duplicate": self.duplicate,
        }


def _line(item: Mapping[str, str]) -> int:
    try:
        return int(item.get(LINE_COLUMN, ""))
    except ValueError:
        raise ValueError(
            f"an item without a {LINE_COLUMN} column: {sorted(item)}; the import reads the "
            "files POST /v1/imports stores"
        ) from None


@cache
def _columns(headers: tuple[str, ...]) -> tuple[Column, ...]:
    problems = _Problems()
    columns = read_header(headers, 1, problems)
    if problems:
        raise ValueError("; ".join(describe(problem) for problem in problems.listed))
    return tuple(columns)


def marker_key(lines: Sequence[int]) -> str:
    """The batch's marker: the same rows give the same key on every retry."""
    return f"{BATCH_PREFIX}{min(lines):07d}-{max(lines):07d}"


def _counted(import_id: str, key: str) -> bool:
    try:
        ImportRecord.get(import_id, key, consistent_read=True, attributes_to_get=["part"])
    except ImportRecord.DoesNotExist:
        return False
    return True


def import_event_id(import_id: str, contact_id: str) -> str:
    return f"import:{import_id}:{contact_id}"


def _journey(
    change: RowChange,
    workflow_id: str,
    import_id: str,
    index: router.WorkflowIndex,
    settings: Settings,
    now: datetime,
    sfn: Any,
    sqs: Any,
) -> tuple[JourneyOutcome, str | None]:
    message = router.EnterWorkflowMessage(
        type="enter_workflow",
        workflow_id=workflow_id,
        contact_id=change.contact_id,
        event_id=import_event_id(import_id, change.contact_id),
        source=router.EnterSource(trigger=f"import:{import_id}"),
        occurred_at=now,
    )
    try:
        outcome = router.route(message, index, settings, now=now, sfn=sfn, sqs=sqs)
    except router.StartFailed as error:
        return "failed", str(error)
    if outcome.duplicate:  # routed by an earlier attempt at this batch
        name = router.execution_name(change.contact_id, workflow_id, message.event_id)
        try:
            entry = EntryRecord.get(change.contact_id, workflow_id, consistent_read=True)
        except EntryRecord.DoesNotExist:
            return "skipped", None
        return ("started" if entry.entry_id == name else "skipped"), None
    statuses = {start.status for start in outcome.starts}
    if statuses & {"started", "already_started"}:
        return "started", None
    if statuses & {"skipped_never", "skipped_too_soon"}:
        return "skipped", None
    return "failed", f"workflow {workflow_id!r} is not deployed"


def import_row(
    item: Mapping[str, str],
    batch: ImportBatchInput,
    settings: Settings,
    *,
    now: datetime,
    sqs: Any,
    sfn: Any,
    index: router.WorkflowIndex | None,
) -> RowOutcome:
    """Upsert one row's contact and enter it into the workflow. A row that cannot be
    imported is an outcome; what may work on a retry raises `TransientError`."""
    line = _line(item)
    headers = tuple(key for key in item if key != LINE_COLUMN)
    change, problems = row_change(_columns(headers), [item[key] for key in headers], line)
    if change is None:
        reason = "; ".join(
            f"{column}: {message}" if column else message for column, message in problems
        )
        return RowOutcome(line, str(item.get("contact_id", "")), "failed", reason=reason)
    try:
        result = upsert_contact(
            change.contact_id, change.change, settings, now=now, source="import", sqs=sqs
        )
    except ContactTooLarge as error:
        return RowOutcome(line, change.contact_id, "failed", reason=str(error))
    except ContactWriteConflict as error:
        raise TransientError(str(error)) from error
    except (ClientError, BotoCoreError, PynamoDBException) as error:
        _reraise_transient(error, f"contact {change.contact_id!r}")
        raise
    contact: ContactOutcome = (
        "created" if result.created else "updated" if result.written else "unchanged"
    )
    if not batch.workflow_id or index is None:
        return RowOutcome(line, change.contact_id, contact)
    journey, why = _journey(
        change, batch.workflow_id, batch.import_id, index, settings, now, sfn, sqs
    )
    return RowOutcome(line, change.contact_id, contact, journey, why)


def _record(import_id: str, key: str, counts: BatchCounts, now: datetime) -> bool:
    """Add the batch's counts to the summary, once; False if it was counted before."""
    marker = ImportRecord(
        import_id,
        key,
        processed=counts.processed,
        created=counts.created,
        updated=counts.updated,
        unchanged=counts.unchanged,
        started=counts.started,
        skipped=counts.skipped,
        failed=counts.failed,
        failures=[
            _failure(line=line, contact_id=contact_id, reason=reason[:500])
            for line, contact_id, reason in counts.failures[:FAILURES_PER_BATCH]
        ],
        expires_at=int(now.timestamp()) + RECORD_TTL_SECONDS,
    )
    actions: list[Action] = [
        ImportRecord.batches.add(1),
        ImportRecord.processed.add(counts.processed),
        ImportRecord.created.add(counts.created),
        ImportRecord.updated.add(counts.updated),
        ImportRecord.unchanged.add(counts.unchanged),
        ImportRecord.started.add(counts.started),
        ImportRecord.skipped.add(counts.skipped),
        ImportRecord.failed.add(counts.failed),
    ]
    meta: Any = ImportRecord.Meta
    connection = Connection(region=getattr(meta, "region", None), host=getattr(meta, "host", None))
    for attempt in range(COUNT_ATTEMPTS):
        try:
            with TransactWrite(connection=connection) as transaction:
                transaction.save(marker, condition=ImportRecord.part.does_not_exist())
                transaction.update(ImportRecord(import_id, SUMMARY), actions=actions)
        except TransactWriteError as error:
            codes = [getattr(reason, "code", None) for reason in error.cancellation_reasons or []]
            if codes and codes[0] == "ConditionalCheckFailed":
                return False
            if "TransactionConflict" in codes and attempt + 1 < COUNT_ATTEMPTS:
                time.sleep(random.uniform(0, 0.05 * 2**attempt))
                continue
            _reraise_transient(error, f"counting {key} of {import_id}")
            if "TransactionConflict" in codes:
                raise TransientError(f"counting {key} of {import_id}: conflicts") from error
            raise
        return True
    raise AssertionError("unreachable: the last attempt returns or raises")


def import_batch(
    event: Mapping[str, Any],
    settings: Settings,
    *,
    now: datetime | None = None,
    sqs: Any = None,
    sfn: Any = None,
    index: router.WorkflowIndex | None = None,
    rows_per_second: float = ROWS_PER_SECOND,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> BatchCounts:
    """Import one ItemBatcher batch (see the module notes). Safe to run again: a counted
    batch is skipped, and every row's journey has a deterministic execution name."""
    batch = Batch.model_validate(event)
    info = batch.BatchInput
    key = marker_key([_line(item) for item in batch.Items])
    now = now or journeys_clock.now()
    router.bind(settings)
    bind(settings)
    if _counted(info.import_id, key):
        log.info("batch %s of %s was counted before; nothing to do", key, info.import_id)
        return BatchCounts(duplicate=True)
    if info.workflow_id:
        index = index or router.load_index(settings.workflow_index)
        sfn = sfn if sfn is not None else router.stepfunctions_client(settings)
    sqs = sqs if sqs is not None else _client("sqs", settings.region)
    counts = BatchCounts()
    begun = clock()
    for done, item in enumerate(batch.Items, 1):
        outcome = import_row(item, info, settings, now=now, sqs=sqs, sfn=sfn, index=index)
        if outcome.reason:
            log.warning(
                "row not imported: line %d, contact %r: %s",
                outcome.line,
                outcome.contact_id,
                outcome.reason,
            )
        counts.add(outcome)
        ahead = done / rows_per_second - (clock() - begun)
        if ahead > 0:
            sleep(ahead)
    try:
        counts.duplicate = not _record(info.import_id, key, counts, now)
    except PynamoDBException as error:
        _reraise_transient(error, f"counting {key} of {info.import_id}")
        raise
    return counts
