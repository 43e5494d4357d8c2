"""The public HTTP API: event intake, contacts, workflows, journeys, CSV imports and
unsubscribe links.

A Powertools `APIGatewayRestResolver` with validation on: request and response bodies are
the pydantic models below, whose JSON Schema makes the OpenAPI document (served at
`/v1/openapi.json` and `/v1/docs`, checked in as docs/openapi.json). Every 4xx says which
field is wrong and why, and nothing is written or enqueued for a rejected request.

- Intake validates, checks the contacts exist and enqueues `{"type": "event", ...}` for the
  router; `event_id` is the client's idempotency key (the router drops repeats).
- Contact upserts merge into the contact item the state machines also update, so they
  change only the nested keys the request names, and enqueue one `contact_changed`
  message when a trigger could fire (tags, lists, attributes).
- Contact changes themselves live in `journeys.contact_updates` (the CSV import shares
  them); contact files are checked and imported by `journeys.imports`: a file with any
  problem is refused whole (400, every problem with its line and column).
- Unsubscribe links are signed (`journeys.messaging.sign_link`): GET only shows a page
  (link scanners prefetch GETs), POST unsubscribes (the page's button, and RFC 8058
  one-click from the mailbox).

API Gateway enforces the API key on every route except the unsubscribe pages. Nothing
here reads the environment or does I/O at import: each request reads `get_settings()` and
binds the tables. Regenerate the OpenAPI document with
`python -m journeys.api docs/openapi.json` (`--check` fails if it is stale).
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path as FilePath
from typing import Annotated, Any, cast
from urllib.parse import unquote

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import (
    APIGatewayRestResolver,
    CORSConfig,
    Response,
    content_types,
)
from aws_lambda_powertools.event_handler.exceptions import NotFoundError, ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.openapi.types import (
    OpenAPIResponse,
    OpenAPIResponseContentSchema,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from journeys import __version__, aws, clock, events_queue, imports, insights
from journeys.compiler.models import PATTERN_HELP, EventName
from journeys.contact_updates import (
    CONTACT_ID_HELP,
    CONTACT_ID_PATTERN,
    ChannelIn,
    ContactId,
    ContactUpsert,
    RequestModel,
    encode,
    find_contact,
    finite_json,
    record_state,
    upsert_contact,
)
from journeys.contacts import SUBSCRIBED
from journeys.exceptions import (
    ContactNotFound,
    ContactTooLarge,
    ContactWriteConflict,
    ImportTooLarge,
    InvalidImportFile,
    TransientError,
    WorkflowNotDeployed,
)
from journeys.messaging import verify_link
from journeys.settings import Settings, get_settings
from journeys.store import ContactRecord, EntryRecord, bind_tables, iso

logger = Logger(child=True)

API_TITLE = "Journeys API"
#: The largest request body accepted (SQS's message limit; API Gateway allows more).
MAX_BODY_BYTES = 256 * 1024
#: The largest `properties` of one event, as JSON: the message must fit in SQS with room.
MAX_PROPERTIES_BYTES = 200 * 1024
MAX_BATCH_EVENTS = 100
#: SendMessageBatch limits: entries per call and bytes per call.
#: How far in the future an event's `occurred_at` may be (client clocks drift).
CLOCK_SKEW = timedelta(minutes=15)

_EVENT_ID_PATTERN = r"^[!-~]{1,128}$"
_HELP: dict[str, str] = {
    **PATTERN_HELP,
    CONTACT_ID_PATTERN: CONTACT_ID_HELP,
    _EVENT_ID_PATTERN: "event ids are 1 to 128 printable ASCII characters without spaces "
    "(e.g. a UUID)",
}

# --- Request and response bodies ----------------------------------------------------------


class EventIn(RequestModel):
    """Something a contact did, as your app reports it."""

    event_id: str = Field(
        pattern=_EVENT_ID_PATTERN,
        description="Your unique id for this event. Sending the same id again is harmless: "
        "it is processed once.",
        examples=["8f14e45f-ceea-467f-a8f6-6c1e2b0c3d4e"],
    )
    contact_id: ContactId
    name: EventName
    properties: dict[str, Any] = Field(
        default_factory=dict,
        description="Anything about the event; workflows filter on it and templates read "
        "it. At most 200 KiB as JSON.",
        examples=[{"product_name": "Red shoes", "price": 59.9}],
    )
    occurred_at: AwareDatetime | None = Field(
        None,
        description="When it happened (ISO 8601 with an offset); defaults to when received.",
        examples=["2026-05-04T10:15:00Z"],
    )

    _check_properties = field_validator("properties")(
        classmethod(lambda cls, value: finite_json(value, "properties"))
    )


class EventBatch(RequestModel):
    events: list[EventIn] = Field(min_length=1, max_length=MAX_BATCH_EVENTS)

    @model_validator(mode="after")
    def _unique_ids(self) -> EventBatch:
        first: dict[str, int] = {}
        for index, event in enumerate(self.events):
            if event.event_id in first:
                raise ValueError(
                    f"event_id {event.event_id!r} of events[{index}] repeats "
                    f"events[{first[event.event_id]}]; send each event once"
                )
            first[event.event_id] = index
        return self


class Accepted(BaseModel):
    accepted: list[str] = Field(description="The event_ids enqueued, in request order.")


class ChannelOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    address: str | None = None
    status: str = SUBSCRIBED


class ContactOut(BaseModel):
    contact_id: str
    attributes: dict[str, Any]
    tags: dict[str, str] = Field(description="Tag -> when it was added (ISO 8601, UTC).")
    lists: dict[str, str] = Field(description='List -> "subscribed" or "unsubscribed".')
    segments: dict[str, str] = Field(description="Segment -> when the contact entered it.")
    channels: dict[str, ChannelOut]
    time_zone: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


class WorkflowOut(BaseModel):
    id: str
    name: str
    triggers: list[dict[str, Any]] = Field(
        description='How contacts enter; each has a "key" such as event:added_to_cart.'
    )


class WorkflowsOut(BaseModel):
    workflows: list[WorkflowOut]


class JourneyOut(BaseModel):
    workflow_id: str
    entry_id: str
    entered_at: str
    status: str = Field(description="running, or how the execution ended.")
    execution_arn: str | None = None
    current_step: str | None = Field(
        None, description="The step the contact is at (or ended on), as the workflow names it."
    )


class JourneysOut(BaseModel):
    contact_id: str
    journeys: list[JourneyOut] = Field(description="Latest entry per workflow, newest first.")


class ErrorItem(BaseModel):
    loc: list[str | int] = Field(description='Where: ["body", "events", 3, "name"].')
    msg: str
    type: str


class ErrorOut(BaseModel):
    statusCode: int  # Powertools' own error bodies spell it so
    message: str
    detail: list[ErrorItem] = Field(default_factory=list)


# --- Errors --------------------------------------------------------------------------------


class ApiError(Exception):
    """A request the API refuses: `status`, a message for people, the fields at fault."""

    def __init__(self, status: int, message: str, detail: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = [dict(item) for item in detail]


#: Where a field is in a request, as Powertools and pydantic say it: ["body", "events", 3].
Loc = Sequence[str | int]


def _item(loc: Loc, msg: str, kind: str) -> dict[str, Any]:
    return {"loc": list(loc), "msg": msg, "type": kind}


def where(loc: Sequence[Any]) -> str:
    """A field's location for people: ("body", "events", 3, "name") -> events[3].name."""
    parts = list(loc)
    prefix = ""
    if parts and parts[0] in ("query", "path", "header"):
        prefix = f"{parts.pop(0)} parameter "
    elif parts and parts[0] == "body":
        parts.pop(0)
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part == "[key]":
            text += " (key)"
        else:
            text += f".{part}" if text else str(part)
    return prefix + (text or "body")


def explain(error: Mapping[str, Any]) -> dict[str, Any]:
    """One validation error as {loc, msg, type}, with a message that teaches."""
    kind = str(error.get("type", "invalid"))
    msg = str(error.get("msg") or kind)
    context = error.get("ctx") or {}
    if kind == "string_pattern_mismatch" and context.get("pattern") in _HELP:
        msg = _HELP[context["pattern"]]
    elif kind == "missing":
        msg = "required"
    elif kind == "extra_forbidden":
        msg = "unknown field"
    elif kind == "json_invalid":
        loc = list(error.get("loc", ()))
        at = f" at character {loc[1]}" if len(loc) > 1 else ""
        msg = f"not valid JSON: {context.get('error', 'parse error')}{at}"
        return _item(["body"], msg, kind)
    msg = msg.removeprefix("Value error, ")
    return _item(list(error.get("loc", ())), msg, kind)


def summary(items: Sequence[Mapping[str, Any]], limit: int = 5) -> str:
    parts = [f"{where(item['loc'])}: {item['msg']}" for item in items[:limit]]
    more = f" (and {len(items) - limit} more)" if len(items) > limit else ""
    return "; ".join(parts) + more


def _json_response(status: int, body: Mapping[str, Any]) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def _error_response(
    status: int, message: str, detail: Sequence[Mapping[str, Any]] = ()
) -> Response[Any]:
    return _json_response(
        status, {"statusCode": status, "message": message, "detail": list(detail)}
    )


# --- AWS clients and settings ------------------------------------------------------------


def aws_client(service: str, region: str) -> Any:
    """The process's client of `service` (`journeys.aws`: made once, endpoint-aware)."""
    return aws.client(service, region)


def runtime() -> Settings:
    """This request's settings, with the tables bound to them."""
    settings = get_settings()
    bind_tables(settings)
    return settings


# --- Intake ---------------------------------------------------------------------------------


def event_message(event: EventIn, now: datetime) -> dict[str, Any]:
    """The router's message for one event (`occurred_at` in the store's UTC format)."""
    return {
        "type": "event",
        "event_id": event.event_id,
        "contact_id": event.contact_id,
        "name": event.name,
        "properties": event.properties,
        "occurred_at": iso(event.occurred_at or now),
    }


def check_events(events: Sequence[EventIn], locs: Sequence[Loc], now: datetime) -> None:
    """What the models cannot check: sizes (413) and times in the future (422). `locs`
    says where each event is in the request."""
    too_big: list[dict[str, Any]] = []
    future: list[dict[str, Any]] = []
    for event, at in zip(events, locs, strict=True):
        size = len(encode(event.properties))
        if size > MAX_PROPERTIES_BYTES:
            too_big.append(
                _item(
                    [*at, "properties"],
                    f"{size} bytes as JSON; the limit is {MAX_PROPERTIES_BYTES} (200 KiB)",
                    "too_large",
                )
            )
        if event.occurred_at is not None and event.occurred_at > now + CLOCK_SKEW:
            future.append(
                _item(
                    [*at, "occurred_at"],
                    f"{event.occurred_at.isoformat()} is in the future",
                    "future",
                )
            )
    if too_big:
        raise ApiError(413, f"payload too large: {summary(too_big)}", too_big)
    if future:
        raise ApiError(422, f"invalid request: {summary(future)}", future)


def unknown_contacts(contact_ids: Iterable[str]) -> set[str]:
    wanted = set(contact_ids)
    found = {
        record.contact_id
        for record in ContactRecord.batch_get(
            list(wanted), consistent_read=True, attributes_to_get=["contact_id"]
        )
    }
    return wanted - found


def enqueue(sqs: Any, queue_url: str, bodies: Sequence[str]) -> None:
    """Send every body to the router; 503 if some never go.

    A 503 may follow a partial send: clients retry with the same event_ids, which the
    router processes once."""
    try:
        events_queue.enqueue(sqs, queue_url, bodies)
    except TransientError:
        raise ApiError(
            503,
            "could not enqueue every message; retry the request (the same event_id is "
            "processed once)",
        ) from None


def accept_events(
    events: Sequence[EventIn],
    locs: Sequence[Loc],
    settings: Settings,
    *,
    now: datetime,
    sqs: Any = None,
) -> list[str]:
    """Check what the models cannot and that the contacts exist, then enqueue every event
    (all or nothing); the accepted ids."""
    check_events(events, locs, now)
    missing = unknown_contacts(event.contact_id for event in events)
    if missing:
        detail = [
            _item(
                [*at, "contact_id"],
                f"contact {event.contact_id!r} does not exist; create it with PUT "
                "/v1/contacts/{contact_id} first",
                "unknown_contact",
            )
            for event, at in zip(events, locs, strict=True)
            if event.contact_id in missing
        ]
        raise ApiError(404, f"unknown contact: {summary(detail)}", detail)
    bodies = [encode(event_message(event, now)) for event in events]
    enqueue(sqs or aws_client("sqs", settings.region), settings.events_queue_url, bodies)
    return [event.event_id for event in events]


# --- Contacts: reading and writing ----------------------------------------------------------


def contact_out(record: ContactRecord) -> ContactOut:
    state = record_state(record)
    return ContactOut(
        contact_id=record.contact_id,
        attributes=state["attributes"],
        tags={str(k): str(v) for k, v in state["tags"].items()},
        lists={str(k): str(v) for k, v in state["lists"].items()},
        segments={str(k): str(v) for k, v in state["segments"].items()},
        channels={
            str(name): ChannelOut.model_validate(value)
            for name, value in state["channels"].items()
            if isinstance(value, Mapping)
        },
        time_zone=record.time_zone,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


_CONTACT_ID: TypeAdapter[str] = TypeAdapter(ContactId)


def path_contact_id(raw: str) -> str:
    """The contact id of a URL path, decoded and checked like ids in bodies."""
    contact_id = unquote(raw)
    try:
        return _CONTACT_ID.validate_python(contact_id)
    except ValidationError as error:
        detail = [explain({**e, "loc": ("path", "contact_id")}) for e in error.errors()]
        raise ApiError(422, f"invalid request: {summary(detail)}", detail) from None


def _contact_not_found(contact_id: str) -> ApiError:
    detail = [_item(["path", "contact_id"], f"contact {contact_id!r} does not exist", "not_found")]
    return ApiError(404, f"contact {contact_id!r} does not exist", detail)


# --- Workflows and journeys -----------------------------------------------------------------


def list_workflows(index: Mapping[str, Any]) -> list[WorkflowOut]:
    workflows: Mapping[str, Any] = index.get("workflows") or {}
    return [
        WorkflowOut(
            id=workflow_id, name=entry.get("name", workflow_id), triggers=entry.get("triggers", [])
        )
        for workflow_id, entry in sorted(workflows.items())
    ]


#: How an execution's last history event names its end.
_ENDINGS = {
    "ExecutionSucceeded": "succeeded",
    "ExecutionFailed": "failed",
    "ExecutionAborted": "aborted",
    "ExecutionTimedOut": "timed_out",
}


def position(history: Sequence[Mapping[str, Any]]) -> tuple[str | None, str | None]:
    """(the last state entered, how the execution ended or None) from history events."""
    newest_first = sorted(history, key=lambda event: int(event.get("id", 0)), reverse=True)
    ended = _ENDINGS.get(str(newest_first[0].get("type"))) if newest_first else None
    for event in newest_first:
        if str(event.get("type", "")).endswith("StateEntered"):
            details = event.get("stateEnteredEventDetails") or {}
            return (str(details["name"]) if "name" in details else None), ended
    return None, ended


def execution_position(
    sfn: Any, execution_arn: str, pages: int = 3
) -> tuple[str | None, str | None]:
    """Where an execution is, from its history (newest first); (None, None) if unknown."""
    history: list[Mapping[str, Any]] = []
    arguments: dict[str, Any] = {
        "executionArn": execution_arn,
        "reverseOrder": True,
        "maxResults": 100,
    }
    try:
        for _ in range(pages):
            page = sfn.get_execution_history(**arguments)
            history += page.get("events", [])
            step, ended = position(history)
            if step is not None or not page.get("nextToken"):
                return step, ended
            arguments["nextToken"] = page["nextToken"]
    except Exception as error:  # access denied, execution gone: the entry still shows
        logger.warning("no execution history", extra={"arn": execution_arn, "error": str(error)})
        return None, None
    return position(history)


def contact_journeys(contact_id: str, settings: Settings, sfn: Any = None) -> JourneysOut:
    if find_contact(contact_id) is None:
        raise _contact_not_found(contact_id)
    journeys: list[JourneyOut] = []
    for entry in EntryRecord.query(contact_id, consistent_read=True):
        step: str | None = None
        status = entry.status
        if entry.execution_arn:
            client = sfn or aws_client("stepfunctions", settings.region)
            step, ended = execution_position(client, entry.execution_arn)
            status = ended or status
        journeys.append(
            JourneyOut(
                workflow_id=entry.workflow_id,
                entry_id=entry.entry_id,
                entered_at=entry.entered_at,
                status=status,
                execution_arn=entry.execution_arn,
                current_step=step,
            )
        )
    journeys.sort(key=lambda journey: journey.entered_at, reverse=True)
    return JourneysOut(contact_id=contact_id, journeys=journeys)


# --- Unsubscribe pages ---------------------------------------------------------------------

_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
    # The link carries its signature: do not send it to anyone else.
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'",
}
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;"
    "line-height:1.5;color:#1f2328}button{font:inherit;padding:.6rem 1.2rem;cursor:pointer}"
)


def page(title: str, message: str, *, button: str | None = None) -> str:
    """A small self-contained HTML page; with `button`, a form that POSTs to this URL."""
    form = (
        '<form method="post"><input type="hidden" name="confirm" value="yes">'
        f'<button type="submit">{html.escape(button)}</button></form>'
        if button
        else ""
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>{form}</body></html>\n"
    )


def _html(status: int, body: str) -> Response[str]:
    return Response(
        status_code=status,
        content_type="text/html; charset=utf-8",
        body=body,
        headers=dict(_PAGE_HEADERS),
    )


INVALID_LINK = page(
    "This link does not work",
    "It may have been cut short when it was copied. Use the unsubscribe link in a recent "
    "email from us, or reply to that email and we will remove you.",
)


def _verified(
    action: str | None, contact: str | None, workflow: str | None, sig: str | None
) -> tuple[str, str, str] | None:
    params = {
        name: value
        for name, value in (
            ("action", action),
            ("contact", contact),
            ("workflow", workflow),
            ("sig", sig),
        )
        if value is not None
    }
    return verify_link(params, get_settings().link_secret)


# --- The resolver ---------------------------------------------------------------------------


def body_size(event: Mapping[str, Any]) -> int:
    body = event.get("body")
    if not body:
        return 0
    if event.get("isBase64Encoded"):
        try:
            return len(base64.b64decode(body))
        except (binascii.Error, ValueError):
            return len(body)
    return len(str(body).encode("utf-8"))


def body_limit(event: Mapping[str, Any]) -> tuple[int, str]:
    """The largest body the request may have: contact files are larger than JSON bodies."""
    path = str(event.get("path") or "").rstrip("/")
    if event.get("httpMethod") == "POST" and path.endswith(IMPORTS_PATH):
        return imports.MAX_FILE_BYTES, "4 MiB; split the file"
    return MAX_BODY_BYTES, "256 KiB"


class JourneysResolver(APIGatewayRestResolver):
    """Refuses oversized bodies before anything parses them."""

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        size = body_size(event)
        limit, says = body_limit(event)
        if size > limit:
            message = f"request body is {size} bytes; the limit is {limit} ({says})"
            return {
                "statusCode": 413,
                "multiValueHeaders": {"Content-Type": [content_types.APPLICATION_JSON]},
                "body": json.dumps(
                    {
                        "statusCode": 413,
                        "message": message,
                        "detail": [_item(["body"], message, "too_large")],
                    }
                ),
                "isBase64Encoded": False,
            }
        return super().resolve(event, context)


#: The dashboard may be served from anywhere (see DashboardOrigin in template.yaml, which
#: answers the preflights); responses say so too. Every route still needs the API key.
app = JourneysResolver(
    enable_validation=True,
    cors=CORSConfig(allow_origin="*", allow_headers=["Content-Type", "X-Api-Key"], max_age=600),
)
app.configure_openapi(
    title=API_TITLE,
    version=__version__,
    description="Track events, keep contacts up to date and see where they are in your "
    "journeys. Every route needs the API key in the x-api-key header except the "
    "unsubscribe pages, which are reached from signed links in emails.",
    security_schemes={
        "apiKey": APIKey.model_validate({"in": APIKeyIn.header, "name": "x-api-key"})
    },
)
app.enable_swagger(path="/v1/docs")

API_KEY: list[dict[str, list[str]]] = [{"apiKey": []}]


def _responses(ok: int, description: str, *errors: int) -> dict[int, OpenAPIResponse]:
    """The documented answers of a JSON route: success (its return model) and errors."""
    reasons = {
        400: "Malformed JSON or no body",
        404: "Unknown contact",
        409: "Concurrent change; retry",
        413: "Payload too large",
        503: "Queue unavailable; retry",
    }
    responses: dict[int, OpenAPIResponse] = {ok: {"description": description}}
    for code in errors:
        responses[code] = {
            "description": reasons[code],
            "content": {content_types.APPLICATION_JSON: {"model": ErrorOut}},
        }
    return responses


def _html_responses() -> dict[int, OpenAPIResponse]:
    html_page: OpenAPIResponseContentSchema = {"schema": {"type": "string"}}
    return {
        200: {"description": "An HTML page", "content": {"text/html": html_page}},
        403: {"description": "The link is not valid", "content": {"text/html": html_page}},
    }


_Handler = Callable[[Any], Response[Any]]


def _handles(kind: type[Exception]) -> Callable[[_Handler], _Handler]:
    """`app.exception_handler(kind)`, typed (Powertools leaves it unannotated)."""
    register = cast(
        Callable[[type[Exception]], Callable[[_Handler], _Handler]], app.exception_handler
    )
    return register(kind)


@_handles(ApiError)
def _api_error(error: ApiError) -> Response[Any]:
    return _error_response(error.status, error.message, error.detail)


@_handles(ContactTooLarge)
def _contact_too_large(error: ContactTooLarge) -> Response[Any]:
    return _error_response(413, "the contact would exceed DynamoDB's 400 KB item size")


@_handles(ContactWriteConflict)
def _contact_conflict(error: ContactWriteConflict) -> Response[Any]:
    return _error_response(409, "the contact is being changed by another request; try again")


@_handles(TransientError)
def _unavailable(error: TransientError) -> Response[Any]:
    logger.warning("dependency unavailable", extra={"error": str(error)})
    return _error_response(503, "temporarily unavailable; retry the request")


@_handles(RequestValidationError)
def _invalid_request(error: RequestValidationError) -> Response[Any]:
    items = [explain(item) for item in error.errors()]
    if any(item["type"] == "json_invalid" for item in items):
        return _error_response(400, f"malformed JSON: {summary(items)}", items)
    if any(item["loc"] == ["body"] and item["type"] == "missing" for item in items):
        return _error_response(400, "a JSON body is required", items)
    return _error_response(422, f"invalid request: {summary(items)}", items)


@_handles(RequestUnsupportedContentType)
def _unsupported(error: RequestUnsupportedContentType) -> Response[Any]:
    message = "send the body as JSON with Content-Type: application/json"
    return _error_response(
        415, message, [_item(["header", "content-type"], message, "unsupported")]
    )


@app.not_found
def _no_route(error: NotFoundError) -> Response[Any]:
    event = app.current_event
    return _error_response(404, f"no route {event.http_method} {event.path}")


@_handles(ServiceError)
def _service_error(error: ServiceError) -> Response[Any]:
    message = error.msg if isinstance(error.msg, str) else json.dumps(error.msg)
    return _error_response(error.status_code, message)


@_handles(Exception)
def _internal(error: Exception) -> Response[Any]:
    logger.exception("request failed")
    return _error_response(500, "internal error; retry later or contact the operator")


@app.post(
    "/v1/events",
    status_code=202,
    summary="Track one event",
    description="Validates the event and queues it for the journeys; `event_id` makes "
    "retries safe.",
    tags=["Events"],
    security=API_KEY,
    responses=_responses(202, "Accepted and queued", 400, 404, 413, 503),
)
def post_event(event: EventIn) -> Accepted:
    settings = runtime()
    now = clock.now()
    accepted = accept_events([event], [["body"]], settings, now=now)
    logger.info("event accepted", extra={"event_id": event.event_id, "event_name": event.name})
    return Accepted(accepted=accepted)


@app.post(
    "/v1/events/batch",
    status_code=202,
    summary="Track up to 100 events",
    description="All or nothing: one bad event rejects the batch and nothing is queued.",
    tags=["Events"],
    security=API_KEY,
    responses=_responses(202, "Accepted and queued", 400, 404, 413, 503),
)
def post_events(batch: EventBatch) -> Accepted:
    settings = runtime()
    now = clock.now()
    locs: list[Loc] = [["body", "events", index] for index in range(len(batch.events))]
    accepted = accept_events(batch.events, locs, settings, now=now)
    logger.info("events accepted", extra={"count": len(accepted)})
    return Accepted(accepted=accepted)


ContactPath = Annotated[
    str,
    Path(
        pattern=CONTACT_ID_PATTERN,
        description="Your id for the contact (URL-encoded).",
        examples=["user-42"],
    ),
]


_CREATED: dict[int, OpenAPIResponse] = {
    201: {
        "description": "Created",
        "content": {content_types.APPLICATION_JSON: {"model": ContactOut}},
    }
}


@app.put(
    "/v1/contacts/<contact_id>",
    summary="Create or update a contact",
    description="Merges attributes, adds and removes tags, subscribes to and unsubscribes "
    "from lists, sets channel addresses and consent, and the time zone. 201 when created.",
    tags=["Contacts"],
    security=API_KEY,
    responses={**_responses(200, "Updated", 400, 409, 413, 503), **_CREATED},
)
def put_contact(contact_id: ContactPath, change: ContactUpsert) -> Response[ContactOut]:
    settings = runtime()
    contact_id = path_contact_id(contact_id)
    result = upsert_contact(contact_id, change, settings, now=clock.now())
    assert result.contact is not None
    logger.info(
        "contact upserted",
        extra={
            "contact_id": contact_id,
            "contact_created": result.created,
            "messages": len(result.messages),
        },
    )
    return Response(
        status_code=201 if result.created else 200,
        content_type=content_types.APPLICATION_JSON,
        body=contact_out(result.contact),
    )


@app.get(
    "/v1/contacts/<contact_id>",
    summary="Get a contact",
    tags=["Contacts"],
    security=API_KEY,
    responses=_responses(200, "The contact", 404),
)
def get_contact(contact_id: ContactPath) -> ContactOut:
    runtime()
    contact_id = path_contact_id(contact_id)
    record = find_contact(contact_id)
    if record is None:
        raise _contact_not_found(contact_id)
    return contact_out(record)


@app.get(
    "/v1/contacts/<contact_id>/journeys",
    summary="A contact's journeys and current step",
    description="The latest entry into each workflow, with the step the contact is at.",
    tags=["Contacts"],
    security=API_KEY,
    responses=_responses(200, "The contact's journeys", 404),
)
def get_journeys(contact_id: ContactPath) -> JourneysOut:
    settings = runtime()
    return contact_journeys(path_contact_id(contact_id), settings)


@app.get(
    "/v1/workflows",
    summary="List the deployed workflows",
    tags=["Workflows"],
    security=API_KEY,
)
def get_workflows() -> WorkflowsOut:
    settings = get_settings()
    return WorkflowsOut(workflows=list_workflows(insights.load_index(settings)))


WorkflowPath = Annotated[
    str, Path(description="The workflow's id (see GET /v1/workflows).", examples=["onboarding"])
]


PositionsQuery = Annotated[
    bool,
    Query(
        description="Also read where the running journeys are now (one Step Functions history "
        "read per running execution, at most 100): false for the counters only."
    ),
]


@app.get(
    "/v1/stats",
    summary="Every workflow's totals",
    description="Contacts entered, active, completed, converted (goal reached), exited and "
    "failed, and the conversion rate, for every deployed workflow.",
    tags=["Statistics"],
    security=API_KEY,
    responses=_responses(200, "Totals per workflow"),
)
def get_stats() -> insights.Overview:
    return insights.overview(runtime())


@app.get(
    "/v1/workflows/<workflow_id>/stats",
    summary="A workflow's statistics and funnel",
    description="Totals and conversion rate; per send step the messages sent, skipped, "
    "delivered, opened, clicked, bounced, complained about and unsubscribed from, with their "
    "rates; per state of the state machine the executions that passed it; and the funnel: "
    "every box of the workflow's graph with the contacts that passed it and wait there now.",
    tags=["Statistics"],
    security=API_KEY,
    responses=_responses(200, "The workflow's statistics", 404),
)
def get_workflow_stats(
    workflow_id: WorkflowPath, positions: PositionsQuery = True
) -> insights.WorkflowReport:
    return insights.workflow_report(runtime(), workflow_id, positions=positions)


@app.get(
    "/v1/workflows/<workflow_id>/graph",
    summary="A workflow's graph",
    description='The drawing of the workflow as SVG; every box is a <g class="node …" '
    'data-key="…"> whose key the funnel of GET /v1/workflows/{workflow_id}/stats uses.',
    tags=["Statistics"],
    security=API_KEY,
    responses=_responses(200, "The graph", 404),
)
def get_workflow_graph(workflow_id: WorkflowPath) -> insights.WorkflowGraph:
    return insights.workflow_graph(runtime(), workflow_id)


@app.get(
    "/v1/contacts/<contact_id>/timeline",
    summary="A contact's journeys, step by step",
    description="The latest entry into each workflow with every step the contact went "
    "through: when, and the branch a decision took or what a send did.",
    tags=["Statistics"],
    security=API_KEY,
    responses=_responses(200, "The contact's timeline", 404),
)
def get_timeline(contact_id: ContactPath) -> insights.Timeline:
    return insights.contact_timeline(runtime(), path_contact_id(contact_id))


@_handles(WorkflowNotDeployed)
def _workflow_not_deployed(error: WorkflowNotDeployed) -> Response[Any]:
    message = f"workflow {error.workflow_id!r} is not deployed; see GET /v1/workflows"
    return _error_response(404, message, [_item(["path", "workflow_id"], message, "not_found")])


@_handles(ContactNotFound)
def _contact_missing(error: ContactNotFound) -> Response[Any]:
    return _error_response(
        404, str(error), [_item(["path", "contact_id"], str(error), "not_found")]
    )


# --- CSV imports ---------------------------------------------------------------------------

IMPORTS_PATH = "/v1/imports"
#: What browsers and tools call a CSV file (Windows browsers upload .csv as the Excel type).
CSV_MEDIA_TYPES = ("text/csv", "application/csv", "text/plain", "application/vnd.ms-excel")


class ImportAccepted(BaseModel):
    import_id: str = Field(examples=["imp-20260504T101500-3f9c2a7be014"])
    rows: int = Field(description="Contacts in the file.")
    workflow_id: str | None = Field(None, description="The workflow every contact enters.")
    status_url: str = Field(description="Where to follow the import (GET).")


def _error_content(description: str) -> OpenAPIResponse:
    return {
        "description": description,
        "content": {content_types.APPLICATION_JSON: {"model": ErrorOut}},
    }


_CSV_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The contacts, one per row (UTF-8, comma-separated, at most 4 MiB and "
        f"{imports.MAX_ROWS:,} rows). The first line names the columns: contact_id "
        "(required); email, sms (or phone), push (or push_token), web_push, in_app, "
        "on_site, whatsapp; <channel>_status (subscribed or unsubscribed); time_zone; "
        "tags and lists (several separated by ;); any other column is an attribute, text "
        "unless named name:number or name:boolean. Empty cells change nothing.",
        "content": {
            "text/csv": {
                "schema": {"type": "string"},
                "example": "contact_id,email,first_name,cart_items:number,tags\n"
                "user-42,ada@example.com,Ada,2,vip;newsletter\n",
            }
        },
    }
}

WorkflowQuery = Annotated[
    str | None,
    Query(
        description="The workflow every contact of the file enters (its re-entry rule "
        "applies). Without it the contacts are only created or updated.",
        examples=["onboarding"],
    ),
]


def _csv_body() -> bytes:
    """The request's body as sent: API Gateway base64-encodes text/csv (a binary media
    type of the API, so the bytes arrive untouched) and passes other types as text."""
    event = app.current_event
    content_type = str(event.headers.get("content-type") or "").lower()
    if content_type.split(";")[0].strip() not in CSV_MEDIA_TYPES:
        message = "send the CSV file as the body with Content-Type: text/csv"
        raise ApiError(415, message, [_item(["header", "content-type"], message, "unsupported")])
    body = event.body or ""
    if event.is_base64_encoded:
        try:
            return base64.b64decode(body)
        except (binascii.Error, ValueError):
            raise ApiError(400, "the body is not valid base64") from None
    return body.encode("utf-8")


def _invalid_file(error: InvalidImportFile) -> ApiError:
    """400 naming the first problems in the message and up to 50 in `detail`."""
    detail = [
        _item(["body", line, column or "row"], imports.describe((line, column, message)), "csv")
        for line, column, message in error.problems
    ]
    unlisted = error.total - len(detail)
    if unlisted:
        note = f"{unlisted} more problems not listed; fix these and send the file again"
        detail.append(_item(["body"], note, "more"))
    shown = [item["msg"] for item in detail[:5] if item["type"] == "csv"]
    more = f" (and {error.total - len(shown)} more)" if error.total > len(shown) else ""
    count = "1 problem" if error.total == 1 else f"{error.total} problems"
    message = f"the file was not imported ({count}): {'; '.join(shown)}{more}"
    return ApiError(400, message, detail)


@app.post(
    IMPORTS_PATH,
    status_code=202,
    summary="Import contacts from a CSV file",
    description="Checks the whole file first: any problem refuses it (400, every problem "
    "with its line and column) and nothing is written. A valid file is imported in the "
    "background: every row's contact is created or updated as PUT /v1/contacts/{id} "
    "would, and with `workflow_id` enters that workflow. Follow it at `status_url`.",
    tags=["Imports"],
    security=API_KEY,
    openapi_extensions=_CSV_BODY,
    responses={
        202: {"description": "Accepted; importing"},
        400: _error_content("The file has problems (each with its line and column)"),
        404: _error_content("Unknown workflow"),
        413: _error_content("Over 4 MiB or 100,000 rows; split the file"),
        415: _error_content("Not sent as text/csv"),
        503: _error_content("Storage or Step Functions unavailable; retry"),
    },
)
def post_import(workflow_id: WorkflowQuery = None) -> ImportAccepted:
    settings = runtime()
    body = _csv_body()
    if workflow_id is not None:
        workflows = insights.load_index(settings).get("workflows") or {}
        if workflow_id not in workflows:
            message = f"workflow {workflow_id!r} is not deployed; see GET /v1/workflows"
            raise ApiError(404, message, [_item(["query", "workflow_id"], message, "not_found")])
    try:
        upload = imports.read_upload(body)
    except InvalidImportFile as error:
        raise _invalid_file(error) from None
    except ImportTooLarge as error:
        raise ApiError(413, str(error), [_item(["body"], str(error), "too_large")]) from None
    started = imports.start_import(
        upload,
        workflow_id,
        settings,
        now=clock.now(),
        s3=aws_client("s3", settings.region),
        sfn=aws_client("stepfunctions", settings.region),
    )
    logger.info(
        "import started",
        extra={"import_id": started.import_id, "rows": started.rows, "workflow_id": workflow_id},
    )
    return ImportAccepted(
        import_id=started.import_id,
        rows=started.rows,
        workflow_id=workflow_id,
        status_url=f"{settings.public_base_url}{IMPORTS_PATH}/{started.import_id}",
    )


ImportPath = Annotated[
    str,
    Path(
        description="The import_id POST /v1/imports answered.",
        examples=["imp-20260504T101500-3f9c2a7be014"],
    ),
]


@app.get(
    f"{IMPORTS_PATH}/<import_id>",
    summary="An import's progress",
    description="The import's status (RUNNING, SUCCEEDED, FAILED, ...) and what it did so "
    "far: contacts created, updated and unchanged, journeys started and skipped by the "
    "workflow's re-entry rule, and the rows that failed with the reason.",
    tags=["Imports"],
    security=API_KEY,
    responses={
        200: {"description": "The import"},
        404: _error_content("Unknown import"),
    },
)
def get_import(import_id: ImportPath) -> imports.ImportStatus:
    settings = runtime()
    status = imports.import_status(
        import_id, settings, sfn=aws_client("stepfunctions", settings.region)
    )
    if status is None:
        message = f"no import {import_id!r}; use the import_id POST /v1/imports answered"
        raise ApiError(404, message, [_item(["path", "import_id"], message, "not_found")])
    return status


LinkQuery = Annotated[str | None, Query(description="From the signed link.")]


@app.get(
    "/v1/unsubscribe",
    summary="Unsubscribe page (signed link)",
    description="Shows a confirmation page; does not unsubscribe (link scanners fetch "
    "links in emails). No API key.",
    tags=["Unsubscribe"],
    responses=_html_responses(),
)
def unsubscribe_page(
    action: LinkQuery = None,
    contact: LinkQuery = None,
    workflow: LinkQuery = None,
    sig: LinkQuery = None,
) -> Response[str]:
    link = _verified(action, contact, workflow, sig)
    if link is None:
        return _html(403, INVALID_LINK)
    title = "Email preferences" if link[2] == "preferences" else "Unsubscribe"
    return _html(
        200,
        page(title, "Stop receiving marketing emails from us?", button="Unsubscribe"),
    )


@app.post(
    "/v1/unsubscribe",
    summary="Unsubscribe (signed link, RFC 8058 one-click)",
    description="Unsubscribes the contact from email and ends the journeys that stop on "
    "unsubscribe. Mailboxes POST `List-Unsubscribe=One-Click`. No API key.",
    tags=["Unsubscribe"],
    responses=_html_responses(),
)
def unsubscribe(
    action: LinkQuery = None,
    contact: LinkQuery = None,
    workflow: LinkQuery = None,
    sig: LinkQuery = None,
) -> Response[str]:
    link = _verified(action, contact, workflow, sig)
    if link is None:
        return _html(403, INVALID_LINK)
    contact_id, workflow_id, _ = link
    settings = runtime()
    one_click = "List-Unsubscribe=One-Click" in (app.current_event.decoded_body or "")
    result = upsert_contact(
        contact_id,
        ContactUpsert(channels={"email": ChannelIn(status="unsubscribed")}),
        settings,
        now=clock.now(),
        create=False,
        source="one-click" if one_click else "link",
        workflow_id=workflow_id or None,
    )
    logger.info(
        "unsubscribed",
        extra={
            "contact_id": contact_id,
            "workflow_id": workflow_id,
            "one_click": one_click,
            "changed": bool(result.messages),
        },
    )
    return _html(
        200, page("You are unsubscribed", "You will not receive marketing emails from us any more.")
    )


@app.get("/v1/openapi.json", include_in_schema=False)
def get_openapi() -> Response[str]:
    return Response(
        status_code=200, content_type=content_types.APPLICATION_JSON, body=openapi_document()
    )


# --- The OpenAPI document -------------------------------------------------------------------


@cache
def openapi_document() -> str:
    """The OpenAPI document as checked in at docs/openapi.json."""
    return app.get_openapi_json_schema(title=API_TITLE, version=__version__) + "\n"


def main(argv: Sequence[str] | None = None, out: Callable[[str], object] = print) -> int:
    """`python -m journeys.api [--check] PATH`: write (or check) the OpenAPI document."""
    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    paths = [arg for arg in args if arg != "--check"]
    if len(paths) != 1:
        out("usage: python -m journeys.api [--check] docs/openapi.json")
        return 2
    target = FilePath(paths[0])
    document = openapi_document()
    if check:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current != document:
            out(f"{target} is stale; run: python -m journeys.api {target}")
            return 1
        out(f"{target} is current")
        return 0
    target.write_text(document, encoding="utf-8")
    out(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
