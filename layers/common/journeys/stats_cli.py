"""`journeys stats`: the dashboard's numbers as terminal tables.

It reads the statistics API (GET /v1/stats, /v1/workflows/{id}/stats,
/v1/contacts/{id}/timeline) rather than the tables, so the same command works against the
local stack and a deployed API with nothing but an address and an API key, and shows
exactly what the web dashboard shows. The local stack is the default: `journeys up` writes
its address and key to `.journeys/local.json`.

The answer -> text functions (`render_workflows`, `render_workflow`, `render_timeline`)
are pure and take a `Style` (terminal width, colours), so they are tested without a
terminal or a server. Column widths follow the content; when a table is wider than the
terminal the label column gives way, cut with "…". Output to a pipe is never coloured
and not cut (unless COLUMNS sets a width), so `grep` and `less` see whole lines; NO_COLOR
is honoured.

HTTP is urllib: the CLI gains no dependency, and `journeys.local.cli._request` cannot be
reused here because it turns every failure into one SystemExit text, while this command
tells a refused key from an unknown workflow from a stack that is not running.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import shutil
import sys
import time
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple, TextIO

from journeys.local.cli import STATE_FILE

__all__ = [
    "Endpoint",
    "StatsError",
    "Style",
    "add_commands",
    "command_stats",
    "fetch_json",
    "render_timeline",
    "render_workflow",
    "render_workflows",
    "resolve_endpoint",
    "truncate",
]

ENV_API_URL = "JOURNEYS_API_URL"
ENV_API_KEY = "JOURNEYS_API_KEY"
#: Reading positions costs one GetExecutionHistory call per running journey.
TIMEOUT_SECONDS = 60.0
MIN_WATCH_SECONDS = 0.5
CONTACTS_SHOWN = 20
#: A label column never shrinks below this (or its title), however narrow the terminal.
MIN_LABEL_WIDTH = 8
GAP = "  "
NULL = "–"
ELLIPSIS = "…"
CLEAR_SCREEN = "\x1b[H\x1b[2J"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
NO_STACK = "No local stack is running: start it with `make run` or pass --api/--api-key for AWS"
NOT_FOUND_WORKFLOW = "see `journeys stats` for the workflows"
NOT_FOUND_CONTACT = "contact ids are case-sensitive; `journeys stats WORKFLOW` lists who is where"

BOLD, DIM, RED, GREEN, YELLOW = "1", "2", "31", "32", "33"
STATUS_COLOURS = {
    "running": YELLOW,
    "goal_reached": GREEN,
    "completed": GREEN,
    "failed": RED,
    "timed_out": RED,
    "aborted": RED,
}


# --- Errors and where the API is -------------------------------------------------------


class StatsError(Exception):
    """The statistics cannot be shown; the message says why and what to do.
    `exit_code` 1 is the API's (or the stack's) fault, 2 the command line's."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Endpoint:
    """The statistics API: base URL (without /v1) and key; `local` if read from the
    stack's state file, which changes what the errors advise."""

    url: str
    api_key: str
    local: bool = False


def _base_url(raw: str) -> str:
    url = raw.strip().rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise StatsError(
            f"--api {raw!r} is not an http(s) address: give the API's base URL, e.g. "
            "https://abc123.execute-api.eu-west-1.amazonaws.com/prod",
            exit_code=2,
        )
    # The banner and the OpenAPI document show .../v1: accept a URL copied from there.
    return url.removesuffix("/v1")


def resolve_endpoint(
    api: str | None,
    api_key: str | None,
    project: str = ".",
    environ: Mapping[str, str] | None = None,
) -> Endpoint:
    """--api/--api-key (or JOURNEYS_API_URL/JOURNEYS_API_KEY), else the running local
    stack. An environment key alone does not replace the local stack's own key: it is
    usually the deployed API's, left in the shell."""
    env = os.environ if environ is None else environ
    url = api or env.get(ENV_API_URL) or None
    if url:
        key = api_key or env.get(ENV_API_KEY)
        if not key:
            raise StatsError(
                f"--api needs an API key: pass --api-key KEY or set {ENV_API_KEY} (on AWS: "
                "aws apigateway get-api-key --api-key <the stack's ApiKeyId> --include-value)",
                exit_code=2,
            )
        return Endpoint(_base_url(url), key)
    state = _local_state(Path(project))
    return Endpoint(_base_url(state["api_url"]), api_key or state["api_key"], local=True)


def _local_state(project: Path) -> dict[str, str]:
    path = project.resolve() / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StatsError(NO_STACK) from None
    except (OSError, ValueError) as error:
        raise StatsError(
            f"{path} cannot be read ({error}): restart the local stack (`make run`), "
            "or pass --api/--api-key"
        ) from None
    if not isinstance(state, dict) or not all(
        isinstance(state.get(name), str) for name in ("api_url", "api_key")
    ):
        raise StatsError(
            f"{path} has no api_url and api_key: restart the local stack (`make run`), "
            "or pass --api/--api-key"
        )
    return {"api_url": state["api_url"], "api_key": state["api_key"]}


# --- HTTP --------------------------------------------------------------------------------


def _is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _api_message(body: bytes) -> str:
    """The API's own words from an error body ({"message", "errors"|"detail"}), else
    the start of the body."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        answer = json.loads(text)
    except ValueError:
        return text[:200] or "(no message)"
    if not isinstance(answer, dict):
        return text[:200]
    message = str(answer.get("message") or "").strip()
    items = answer.get("errors") or answer.get("detail") or []
    details = [str(item.get("msg")) for item in items if isinstance(item, dict) and item.get("msg")]
    extra = [d for d in details[:3] if d not in message]
    return "; ".join([message, *extra] if message else extra) or text[:200]


def _http_error(endpoint: Endpoint, path: str, status: int, body: bytes, hint: str) -> str:
    message = _api_message(body)
    where = f"GET {endpoint.url}{path}"
    if status == 403 and message == "Missing Authentication Token":
        # API Gateway's answer to a path no route takes, key or not.
        return (
            f"the API has no route for {where}: check the address (on AWS it ends with "
            "the stage, e.g. .../prod) and that the deployed API has the statistics routes"
        )
    if status == 403:
        advice = (
            f"{STATE_FILE} may be left over from an earlier stack: restart `make run`"
            if endpoint.local
            else f"check --api-key or {ENV_API_KEY} (the key's value, not its ApiKeyId)"
        )
        return f"the API refused the key ({status} {message}) for {where}: {advice}"
    if status == 404:
        return f"{message}; {hint}" if hint else f"{where} answered 404: {message}"
    if status == 429:
        return f"the API is throttling requests ({message}): wait, or --watch less often"
    if status >= 500:
        return (
            f"the API failed ({status} {message}) on {where}: retry in a moment; "
            "the API function's log says why"
        )
    return f"{where} answered {status}: {message}"


def _unreachable(endpoint: Endpoint, reason: object) -> str:
    refused = isinstance(reason, ConnectionRefusedError) or "refused" in str(reason).lower()
    what = "connection refused" if refused else str(reason)
    if endpoint.local:
        return (
            f"the local stack at {endpoint.url} does not answer ({what}): is `make run` "
            f"still running? ({STATE_FILE} may be left over from a stack that was killed)"
        )
    return f"cannot reach the API at {endpoint.url} ({what}): check --api and the network"


def fetch_json(
    endpoint: Endpoint, path: str, not_found_hint: str = "", timeout: float = TIMEOUT_SECONDS
) -> Any:
    """GET `path` with the key; the decoded JSON answer, or StatsError saying what went
    wrong in the user's terms."""
    request = urllib.request.Request(
        endpoint.url + path,
        headers={"x-api-key": endpoint.api_key, "accept": "application/json"},
    )
    # A proxy from the environment must not swallow requests to this machine's stack.
    opener = (
        urllib.request.build_opener(urllib.request.ProxyHandler({}))
        if _is_loopback(endpoint.url)
        else urllib.request.build_opener()
    )
    try:
        with opener.open(request, timeout=timeout) as response:
            body: bytes = response.read()
            content_type = str(response.headers.get("content-type") or "no content type")
    except urllib.error.HTTPError as error:
        with error:
            error_body = error.read()
        raise StatsError(
            _http_error(endpoint, path, error.code, error_body, not_found_hint)
        ) from None
    except urllib.error.URLError as error:
        raise StatsError(_unreachable(endpoint, error.reason)) from None
    except TimeoutError:
        raise StatsError(
            f"the API at {endpoint.url} did not answer GET {path} within {timeout:g} s"
            + (" (try --no-positions)" if "/workflows/" in path else "")
        ) from None
    except OSError as error:
        raise StatsError(_unreachable(endpoint, error)) from None
    try:
        return json.loads(body)
    except ValueError:
        start = body[:80].decode("utf-8", errors="replace").strip()
        raise StatsError(
            f"the answer to GET {endpoint.url}{path} is not JSON ({content_type}: "
            f"{start!r}): is --api the API's address (with its stage), not a web page's?"
        ) from None


# --- Text tables -------------------------------------------------------------------------


@dataclass(frozen=True)
class Style:
    """How text reaches the reader: `width` columns (None: unlimited, a pipe) and whether
    ANSI colours are wanted."""

    width: int | None = None
    color: bool = False

    def paint(self, text: str, sgr: str | None) -> str:
        return f"\x1b[{sgr}m{text}\x1b[0m" if self.color and sgr and text else text


def terminal_style(stream: TextIO, environ: Mapping[str, str] | None = None) -> Style:
    """Colours on a terminal unless NO_COLOR (https://no-color.org) or TERM=dumb; the
    terminal's width, or COLUMNS if set (so `COLUMNS=100 journeys stats | less` cuts)."""
    env = os.environ if environ is None else environ
    tty = stream.isatty()
    color = tty and not env.get("NO_COLOR") and env.get("TERM") != "dumb"
    columns = env.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return Style(width=int(columns), color=color)
    return Style(width=shutil.get_terminal_size().columns if tty else None, color=color)


def display_width(text: str) -> int:
    """Columns a string takes in a terminal (wide CJK and emoji count two)."""
    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        for ch in text
    )


def visible_width(text: str) -> int:
    """Columns of a string that may hold ANSI colour codes (which take none)."""
    return display_width(_ANSI.sub("", text))


def truncate(text: str, width: int) -> str:
    """`text` in at most `width` columns, ending in "…" if cut; at a word boundary
    when one is near, so "Push cart reminder" becomes "Push cart…" rather than "Push ca…"."""
    if display_width(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS if width == 1 else ""
    room = width - 1
    head, used = "", 0
    for ch in text:
        size = display_width(ch)
        if used + size > room:
            break
        head, used = head + ch, used + size
    space = head.rfind(" ")
    if space >= room * 2 // 3:
        head = head[:space]
    return head.rstrip(" ,;:·-") + ELLIPSIS


class Cell(NamedTuple):
    """A table cell with an ANSI colour, applied after padding so columns stay aligned."""

    text: str
    sgr: str | None = None


@dataclass(frozen=True)
class Column:
    title: str
    align: Literal["left", "right"] = "left"
    #: The column that gives way (cut with "…") when the table is wider than the terminal.
    shrink: bool = False


CellLike = str | Cell


def _cell(value: CellLike) -> Cell:
    return value if isinstance(value, Cell) else Cell(value)


def _pad(text: str, width: int, align: str, painted: str) -> str:
    """`painted` (`text` with its colour) padded to `width` columns; colour codes take
    no columns, so the padding is measured on `text`."""
    fill = " " * max(0, width - display_width(text))
    return fill + painted if align == "right" else painted + fill


def table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[CellLike]],
    style: Style,
    footer: Sequence[Sequence[CellLike]] = (),
    indent: str = "",
) -> list[str]:
    """Lines of an aligned table: header, rows, then a rule and `footer` rows if any."""
    body = [[_cell(value) for value in row] for row in rows]
    feet = [[_cell(value) for value in row] for row in footer]
    widths = [
        max([display_width(column.title)] + [display_width(row[i].text) for row in body + feet])
        for i, column in enumerate(columns)
    ]
    if style.width is not None:
        excess = len(indent) + sum(widths) + len(GAP) * (len(columns) - 1) - style.width
        for i, column in enumerate(columns):
            if excess > 0 and column.shrink:
                floor = max(MIN_LABEL_WIDTH, display_width(column.title))
                give = max(0, min(excess, widths[i] - floor))
                widths[i] -= give
                excess -= give

    def line(cells: Sequence[Cell], bold: bool = False) -> str:
        parts = []
        for i, (column, cell) in enumerate(zip(columns, cells, strict=True)):
            text = truncate(cell.text, widths[i])
            painted = style.paint(text, BOLD if bold else cell.sgr)
            parts.append(_pad(text, widths[i], column.align, painted))
        return (indent + GAP.join(parts)).rstrip()

    lines = [line([Cell(column.title) for column in columns], bold=True)]
    lines += [line(row) for row in body]
    if feet:
        rule_width = sum(widths) + len(GAP) * (len(columns) - 1)
        lines.append(indent + style.paint("─" * rule_width, DIM))
        lines += [line(row) for row in feet]
    return lines


def _wrap_parts(parts: Sequence[str], style: Style, separator: str = " · ") -> list[str]:
    """Join `parts` on as few lines as the width allows (never splitting a part)."""
    lines: list[str] = []
    current = ""
    for part in parts:
        candidate = f"{current}{separator}{part}" if current else part
        if current and style.width is not None and visible_width(candidate) > style.width:
            lines.append(current)
            current = part
        else:
            current = candidate
    return [*lines, current] if current else lines


# --- Numbers -----------------------------------------------------------------------------


def count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else NULL


def percent(rate: Any) -> str:
    """A 0..1 rate as "25.0 %" (as the dashboard shows it); null as "–"."""
    if isinstance(rate, int | float) and not isinstance(rate, bool):
        return f"{rate * 100:.1f} %"
    return NULL


def moment(value: Any) -> str:
    """An ISO 8601 time from the API as "2026-05-04 10:15:02" in UTC."""
    if not isinstance(value, str) or not value:
        return NULL
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC)
    return parsed.strftime("%Y-%m-%d %H:%M:%S")


def _null_dim(text: str) -> Cell:
    return Cell(text, DIM if text == NULL else None)


def _title(style: Style, text: str, generated_at: Any = None) -> str:
    when = f"  (as of {moment(generated_at)} UTC)" if generated_at else ""
    return style.paint(text, BOLD) + style.paint(when, DIM)


# --- The three views ---------------------------------------------------------------------

_WORKFLOW_COLUMNS = (
    Column("WORKFLOW"),
    Column("NAME", shrink=True),
    Column("ENTERED", "right"),
    Column("ACTIVE", "right"),
    Column("COMPLETED", "right"),
    Column("GOAL", "right"),
    Column("EXITED", "right"),
    Column("CONVERSION", "right"),
)


def render_workflows(answer: Mapping[str, Any], style: Style) -> str:
    """GET /v1/stats as a table, one row per workflow (by id) and a total line.

    A workflow without a goal shows "–" for goal and conversion: 0 % would read as a
    failing journey."""
    workflows = sorted(answer.get("workflows") or [], key=lambda w: str(w.get("workflow_id")))
    title = _title(style, "Workflows", answer.get("generated_at"))
    if not workflows:
        return f"{title}\n\nNo workflows are deployed.\n"
    rows: list[list[CellLike]] = []
    sums = dict.fromkeys(("entered", "active", "completed", "goal_reached", "exited"), 0)
    goal_entered = goal_reached = 0
    for workflow in workflows:
        totals = workflow.get("totals") or {}
        has_goal = workflow.get("has_goal") is not False
        for name in sums:
            sums[name] += totals.get(name) or 0
        if has_goal:
            goal_entered += totals.get("entered") or 0
            goal_reached += totals.get("goal_reached") or 0
        active = count(totals.get("active"))
        rows.append(
            [
                str(workflow.get("workflow_id", "")),
                str(workflow.get("name") or ""),
                count(totals.get("entered")),
                Cell(active, YELLOW if totals.get("active") else None),
                count(totals.get("completed")),
                _null_dim(count(totals.get("goal_reached")) if has_goal else NULL),
                count(totals.get("exited")),
                _null_dim(percent(workflow.get("conversion_rate")) if has_goal else NULL),
            ]
        )
    total_conversion = percent(goal_reached / goal_entered) if goal_entered else NULL
    footer: list[list[CellLike]] = [
        [
            Cell("TOTAL", BOLD),
            f"{len(workflows)} workflow{'s' if len(workflows) != 1 else ''}",
            *(count(value) for value in sums.values()),
            _null_dim(total_conversion),
        ]
    ]
    lines = table(_WORKFLOW_COLUMNS, rows, style, footer)
    return "\n".join([title, "", *lines]) + "\n"


_FUNNEL_COLUMNS = (
    Column("STEP", shrink=True),
    Column("KIND"),
    Column("PASSED", "right"),
    Column("WAITING", "right"),
)
_MESSAGE_COLUMNS = (
    Column("STEP", shrink=True),
    Column("SENT", "right"),
    Column("DELIVERED", "right"),
    Column("OPEN", "right"),
    Column("CLICK", "right"),
    Column("BOUNCE", "right"),
    Column("UNSUB", "right"),
)
_CONTACT_COLUMNS = (Column("CONTACT"), Column("STEP", shrink=True), Column("SINCE"))


def render_workflow(answer: Mapping[str, Any], style: Style) -> str:
    """GET /v1/workflows/{id}/stats: totals, the funnel box by box, the send steps'
    message rates and who is where now."""
    workflow_id = str(answer.get("workflow_id", ""))
    name = str(answer.get("name") or workflow_id)
    totals = answer.get("totals") or {}
    parts = [
        f"entered {count(totals.get('entered'))}",
        f"active {count(totals.get('active'))}",
        f"completed {count(totals.get('completed'))}",
        f"goal reached {count(totals.get('goal_reached'))}",
        f"exited {count(totals.get('exited'))}",
        f"failed {count(totals.get('failed'))}",
        f"unsubscribed {count(totals.get('unsubscribed'))}",
        f"conversion {percent(answer.get('conversion_rate'))}",
    ]
    out = [_title(style, f"{name} ({workflow_id})", answer.get("generated_at"))]
    out += _wrap_parts(parts, style)
    funnel = [box for box in answer.get("funnel") or [] if isinstance(box, Mapping)]
    labels = {str(box.get("key")): str(box.get("label") or box.get("key")) for box in funnel}
    out += ["", style.paint("Funnel", BOLD)]
    if funnel:
        out += table(_FUNNEL_COLUMNS, [_funnel_row(box) for box in funnel], style)
    else:
        out.append("(the answer has no funnel: is the API older than this command?)")
    out += ["", style.paint("Messages", BOLD)]
    senders = [box for box in funnel if isinstance(box.get("messages"), Mapping)]
    if senders:
        rows = [_message_row(box) for box in senders]
        out += table(_MESSAGE_COLUMNS, rows, style)
        if any(box["messages"].get("engagement_denominator") == "sent" for box in senders):
            out.append(
                style.paint(
                    "* open and click rates over messages sent: no delivery counted yet", DIM
                )
            )
    else:
        out.append("No send steps.")
    out += ["", *_positions(answer.get("positions"), labels, style)]
    return "\n".join(out) + "\n"


def _funnel_row(box: Mapping[str, Any]) -> list[CellLike]:
    waiting = box.get("waiting")
    return [
        str(box.get("label") or box.get("key") or ""),
        Cell(str(box.get("kind") or box.get("shape") or ""), DIM),
        count(box.get("passed")),
        Cell(count(waiting), YELLOW if waiting else DIM if waiting == 0 else None),
    ]


def _message_row(box: Mapping[str, Any]) -> list[CellLike]:
    messages: Mapping[str, Any] = box["messages"]
    over_sent = "*" if messages.get("engagement_denominator") == "sent" else ""

    def rate(name: str, mark: str = "") -> Cell:
        text = percent(messages.get(name))
        return _null_dim(text if text == NULL else text + mark)

    return [
        str(box.get("label") or box.get("key") or ""),
        count(messages.get("sent", 0)),
        count(messages.get("delivered", 0)),
        rate("open_rate", over_sent),
        rate("click_rate", over_sent),
        rate("bounce_rate"),
        rate("unsubscribe_rate"),
    ]


def _positions(positions: Any, labels: Mapping[str, str], style: Style) -> list[str]:
    heading = style.paint("Contacts here now", BOLD)
    if not isinstance(positions, Mapping):
        return [heading, "Not read (--no-positions)."]
    if positions.get("error"):
        return [heading, f"Not read: {positions['error']}"]
    contacts = [c for c in positions.get("contacts") or [] if isinstance(c, Mapping)]
    running = positions.get("executions")
    if isinstance(running, int):
        heading += f" ({count(running)} running journey{'s' if running != 1 else ''})"
    lines = [heading]
    if not contacts:
        lines.append("Nobody is in this journey right now.")
    else:
        rows: list[list[CellLike]] = [
            [
                str(contact.get("contact_id") or "?"),
                labels.get(str(contact.get("step")), str(contact.get("state") or NULL)),
                _null_dim(moment(contact.get("since"))),
            ]
            for contact in contacts[:CONTACTS_SHOWN]
        ]
        lines += table(_CONTACT_COLUMNS, rows, style)
        if len(contacts) > CONTACTS_SHOWN:
            lines.append(f"and {len(contacts) - CONTACTS_SHOWN} more")
    unknown = positions.get("unknown") or 0
    if unknown:
        lines.append(style.paint(f"{unknown} more at a step that could not be read", DIM))
    if positions.get("truncated"):
        lines.append(
            style.paint(f"only the newest {count(running)} running journeys were read", DIM)
        )
    return lines


_STEP_COLUMNS = (Column("TIME"), Column("STEP", shrink=True), Column("OUTCOME"))


def render_timeline(answer: Mapping[str, Any], style: Style) -> str:
    """GET /v1/contacts/{id}/timeline: every journey of the contact, newest first, each
    step with when it was entered and what came of it."""
    contact_id = str(answer.get("contact_id", ""))
    journeys = sorted(
        (j for j in answer.get("journeys") or [] if isinstance(j, Mapping)),
        key=lambda j: str(j.get("entered_at") or ""),
        reverse=True,
    )
    if not journeys:
        return f"{_title(style, f'Contact {contact_id}')}\n\nNo journeys yet.\n"
    plural = "s" if len(journeys) != 1 else ""
    out = [_title(style, f"Contact {contact_id}: {len(journeys)} journey{plural}, times in UTC")]
    for journey in journeys:
        out += ["", *_journey(journey, style)]
    return "\n".join(out) + "\n"


def _journey(journey: Mapping[str, Any], style: Style) -> list[str]:
    status = str(journey.get("status") or "unknown")
    name = str(journey.get("workflow_name") or journey.get("workflow_id") or "")
    ended = journey.get("ended_at")
    parts = [
        style.paint(f"{name} ({journey.get('workflow_id', '')})", BOLD),
        style.paint(status.replace("_", " "), STATUS_COLOURS.get(status.lower())),
        f"entered {moment(journey.get('entered_at'))}",
    ]
    if ended:
        parts.append(f"ended {moment(ended)}")
    lines = _wrap_parts(parts, style)
    running = status.lower() == "running"
    steps = [s for s in journey.get("steps") or [] if isinstance(s, Mapping)]
    rows: list[list[CellLike]] = []
    for index, step in enumerate(steps):
        outcome = step.get("outcome")
        here = running and index == len(steps) - 1 and not step.get("left_at")
        rows.append(
            [
                moment(step.get("entered_at")),
                str(step.get("label") or step.get("state") or ""),
                Cell("◀ here now", YELLOW)
                if here and not outcome
                else _null_dim(str(outcome) if outcome else NULL),
            ]
        )
    if rows:
        lines += table(_STEP_COLUMNS, rows, style, indent="  ")
    else:
        lines.append("  (no steps recorded)")
    if journey.get("console_url"):
        lines.append(style.paint(f"  console: {journey['console_url']}", DIM))
    return lines


# --- The command -------------------------------------------------------------------------


@dataclass(frozen=True)
class View:
    path: str
    render: Callable[[Mapping[str, Any], Style], str]
    not_found_hint: str = ""


def view_for(workflow: str | None, contact: str | None, positions: bool = True) -> View:
    if contact:
        path = f"/v1/contacts/{urllib.parse.quote(contact, safe='')}/timeline"
        return View(path, render_timeline, NOT_FOUND_CONTACT)
    if workflow:
        path = f"/v1/workflows/{urllib.parse.quote(workflow, safe='')}/stats"
        return View(
            path + ("" if positions else "?positions=false"), render_workflow, NOT_FOUND_WORKFLOW
        )
    return View("/v1/stats", render_workflows)


def _show(view: View, answer: Any, as_json: bool, style: Style) -> str:
    if as_json:
        return json.dumps(answer, indent=2, ensure_ascii=False) + "\n"
    if not isinstance(answer, Mapping):
        raise StatsError(f"the answer to GET {view.path} is not a JSON object: {answer!r:.80}")
    return view.render(answer, style)


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def command_stats(args: argparse.Namespace) -> int:
    if args.contact and args.workflow:
        _error("give a WORKFLOW or --contact ID, not both")
        return 2
    if args.no_positions and not args.workflow:
        _error("--no-positions goes with a WORKFLOW: journeys stats WORKFLOW --no-positions")
        return 2
    view = view_for(args.workflow, args.contact, positions=not args.no_positions)
    out: TextIO = sys.stdout
    try:
        endpoint = resolve_endpoint(args.api, args.api_key, args.project)
        if args.watch is not None:
            return watch(endpoint, view, args.watch, args.json, out)
        answer = fetch_json(endpoint, view.path, view.not_found_hint)
        out.write(_show(view, answer, args.json, terminal_style(out)))
    except StatsError as error:
        _error(str(error))
        return error.exit_code
    return 0


def watch(
    endpoint: Endpoint,
    view: View,
    seconds: float,
    as_json: bool,
    out: TextIO,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Redraw every `seconds` until Ctrl-C. A failure after the first good answer keeps
    the last screen and says what failed (a stack restarting should not end the watch);
    a failure before it ends the command, as without --watch."""
    screen = ""
    try:
        while True:
            style = terminal_style(out)
            problem = ""
            try:
                screen = _show(
                    view, fetch_json(endpoint, view.path, view.not_found_hint), as_json, style
                )
            except StatsError as error:
                if not screen:
                    raise
                problem = str(error)
            status = f"every {seconds:g} s, Ctrl-C to stop"
            if problem:
                status = style.paint(f"last refresh failed ({problem})", RED) + f"; {status}"
            frame = screen + "\n" + style.paint(status, DIM if not problem else None) + "\n"
            out.write((CLEAR_SCREEN if out.isatty() else "\n") + frame)
            out.flush()
            sleep(seconds)
    except KeyboardInterrupt:
        return 0


def _interval(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds, e.g. 2") from None
    if not seconds >= MIN_WATCH_SECONDS:
        raise argparse.ArgumentTypeError(
            f"at least {MIN_WATCH_SECONDS:g} s between refreshes (each one reads every "
            "running journey of the workflow)"
        )
    return seconds


DESCRIPTION = """\
The dashboard's numbers in the terminal, read from the statistics API.

  journeys stats                    every workflow: contacts entered, active (in the
                                    journey now), completed, goal reached, exited, and the
                                    conversion rate (goal reached / entered)
  journeys stats WORKFLOW           one workflow: its totals; the funnel, one row per box
                                    of its graph (PASSED: contacts that reached it, WAITING:
                                    there now); each send step's messages (open and click
                                    rates over delivered); the contacts in it now
  journeys stats --contact ID       one contact's journeys, newest first, step by step
                                    with times (UTC) and the decision taken

Without --api it reads the local stack that `make run` (`journeys up`) started, whose
address and key are in .journeys/local.json. Rates are percentages; "–" means nothing to
count yet (no contact entered, no message sent)."""

EPILOG = """\
examples:
  journeys stats
  journeys stats cart-abandonment
  journeys stats cart-abandonment --watch 2          # redraw every 2 s while journeys run
  journeys stats --contact ana
  journeys stats --json | jq '.workflows[] | {workflow_id, conversion_rate}'
  journeys stats big-newsletter --no-positions       # skip reading every running journey

  # the deployed API: the stack's outputs ApiUrl (it ends with the stage) and ApiKeyId
  export JOURNEYS_API_URL=https://abc123.execute-api.eu-west-1.amazonaws.com/prod
  export JOURNEYS_API_KEY=$(aws apigateway get-api-key --api-key <ApiKeyId> \\
      --include-value --query value --output text)
  journeys stats

exit status: 0 shown, 1 the API or the stack could not answer (the message says why),
2 bad usage"""


def add_commands(commands: Any) -> None:
    """Register `journeys stats` on the `journeys` CLI's subparsers."""
    stats = commands.add_parser(
        "stats",
        help="workflow statistics, a workflow's funnel, a contact's timeline",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    stats.add_argument(
        "workflow", nargs="?", metavar="WORKFLOW", help="a workflow id, e.g. cart-abandonment"
    )
    stats.add_argument(
        "--contact", metavar="ID", help="show this contact's journeys instead (a timeline)"
    )
    stats.add_argument(
        "--api",
        metavar="URL",
        help=f"the API's base URL, with the stage on AWS (default: ${ENV_API_URL}, else the "
        "local stack)",
    )
    stats.add_argument(
        "--api-key", metavar="KEY", help=f"the API key (default: ${ENV_API_KEY} with --api)"
    )
    stats.add_argument("--json", action="store_true", help="print the API's answer as JSON")
    stats.add_argument(
        "--watch",
        type=_interval,
        metavar="SECONDS",
        help="redraw every SECONDS until Ctrl-C",
    )
    stats.add_argument(
        "--no-positions",
        action="store_true",
        help="with WORKFLOW: do not list who is where (one history read per running journey)",
    )
    stats.add_argument(
        "--project",
        default=".",
        metavar="DIR",
        help="where .journeys/local.json is (default: .)",
    )
    stats.set_defaults(run=command_stats)
