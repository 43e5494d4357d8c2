"""`journeys stats` without AWS: contract-shaped answers rendered as tables (pure
functions), where the API is, and every failure of the HTTP exchange against a real HTTP
server on 127.0.0.1 told in the user's terms."""

from __future__ import annotations

import argparse
import io
import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from journeys.stats_cli import (
    CLEAR_SCREEN,
    ELLIPSIS,
    NO_STACK,
    Endpoint,
    StatsError,
    Style,
    add_commands,
    display_width,
    fetch_json,
    render_timeline,
    render_workflow,
    render_workflows,
    resolve_endpoint,
    terminal_style,
    truncate,
    view_for,
    watch,
)
from tests.unit.test_connector import Answer, json_answer, serving
from tests.unit.test_connector import Endpoint as Server

ANSI = re.compile(r"\x1b\[[0-9;]*m")
PLAIN = Style()


def run(argv: list[str]) -> int:
    """`journeys stats ...` through its own argparse registration."""
    parser = argparse.ArgumentParser(prog="journeys")
    add_commands(parser.add_subparsers())
    args = parser.parse_args(["stats", *argv])
    return int(args.run(args))


def messages(**values: Any) -> dict[str, Any]:
    """A StepStats as the API sends it: every counter and rate, overridden by `values`."""
    counters = dict.fromkeys(
        ("sent", "skipped", "delivered", "opened", "clicked", "bounced", "complained"), 0
    )
    rates = dict.fromkeys(
        (
            "delivery_rate",
            "bounce_rate",
            "open_rate",
            "click_rate",
            "complaint_rate",
            "unsubscribe_rate",
            "engagement_denominator",
        )
    )
    return {**counters, "unsubscribed": 0, **rates, **values}


def totals(**values: int) -> dict[str, int]:
    names = ("entered", "active", "completed", "goal_reached", "exited", "failed", "unsubscribed")
    return {**dict.fromkeys(names, 0), **values}


ALL_STATS: dict[str, Any] = {
    "generated_at": "2026-05-04T10:15:02.123Z",
    "workflows": [
        {
            "workflow_id": "welcome-series",
            "name": "Welcome series",
            "has_goal": False,
            "totals": totals(entered=40, active=5, completed=35),
            "conversion_rate": None,
        },
        {
            "workflow_id": "cart-abandonment",
            "name": "Cart abandonment",
            "has_goal": True,
            "totals": totals(entered=1200, active=3, completed=7, goal_reached=300),
            "conversion_rate": 0.25,
        },
        {
            "workflow_id": "lead-nurture",
            "name": "Lead nurture for prospects who downloaded the whitepaper",
            "has_goal": True,
            "totals": totals(),
            "conversion_rate": None,
        },
    ],
}

WORKFLOW_STATS: dict[str, Any] = {
    "workflow_id": "cart-abandonment",
    "name": "Cart abandonment",
    "generated_at": "2026-05-04T10:15:02Z",
    "totals": totals(entered=12, active=3, completed=7, goal_reached=2, unsubscribed=1),
    "conversion_rate": 0.1667,
    "steps": {},
    "states": {},
    "funnel": [
        {
            "key": "__start__",
            "label": "Added to cart",
            "kind": "trigger",
            "shape": "start",
            "passed": 12,
            "waiting": 0,
            "messages": None,
        },
        {
            "key": "checked-out",
            "label": "Checked out within 2 h?",
            "kind": "wait_for_event",
            "shape": "wait",
            "passed": 10,
            "waiting": 2,
            "messages": None,
        },
        {
            "key": "cart-push",
            "label": "Push cart reminder",
            "kind": "push",
            "shape": "send",
            "passed": 5,
            "waiting": 0,
            "messages": messages(
                sent=5, opened=1, open_rate=0.2, click_rate=0.0, engagement_denominator="sent"
            ),
        },
        {
            "key": "cart-email",
            "label": "Email cart reminder with similar products",
            "kind": "email",
            "shape": "send",
            "passed": 4,
            "waiting": 1,
            "messages": messages(
                sent=4,
                delivered=4,
                opened=2,
                clicked=1,
                delivery_rate=1.0,
                open_rate=0.5,
                click_rate=0.25,
                bounce_rate=0.0,
                unsubscribe_rate=0.0,
                engagement_denominator="delivered",
            ),
        },
        {
            "key": "reminded",
            "label": "Reminded",
            "kind": "end",
            "shape": "end",
            "passed": 4,
            "waiting": 0,
            "messages": None,
        },
    ],
    "positions": {
        "executions": 3,
        "unknown": 0,
        "truncated": False,
        "contacts": [
            {
                "contact_id": "ana",
                "step": "checked-out",
                "state": "Checked out within 2 h?",
                "since": "2026-05-04T10:00:00Z",
            },
            {
                "contact_id": "bob",
                "step": "cart-email",
                "state": "Email cart reminder",
                "since": "2026-05-04T10:14:00Z",
            },
        ],
    },
}

TIMELINE: dict[str, Any] = {
    "contact_id": "ana",
    "journeys": [
        {
            "workflow_id": "welcome-series", "workflow_name": "Welcome series", "entry_id": "e-1",
            "execution_arn": "arn:1", "status": "completed",
            "entered_at": "2026-05-01T09:00:00Z", "ended_at": "2026-05-03T09:00:00Z",
            "console_url": "https://console.aws.amazon.com/states/home#/v2/executions/details/arn:1",
            "steps": [
                {"key": "hello", "label": "Say hello", "kind": "email", "state": "Say hello",
                 "entered_at": "2026-05-01T09:00:00Z", "left_at": "2026-05-01T09:00:01Z", "outcome": "sent"},
            ],
        },
        {
            "workflow_id": "cart-abandonment", "workflow_name": "Cart abandonment", "entry_id": "e-2",
            "execution_arn": "arn:2", "status": "running",
            "entered_at": "2026-05-04T10:00:00Z", "ended_at": None, "console_url": None,
            "steps": [
                {"key": "checked-out", "label": "Checked out within 2 h?", "kind": "wait_for_event", "state": "Checked out within 2 h?",
                 "entered_at": "2026-05-04T10:00:00Z", "left_at": "2026-05-04T12:00:00Z", "outcome": "No"},
                {"key": "cart-push", "label": "Push cart reminder", "kind": "push", "state": "Push cart reminder",
                 "entered_at": "2026-05-04T12:00:00Z", "left_at": "2026-05-04T12:00:01Z", "outcome": "skipped: quiet hours"},
                {"key": "cart-email", "label": "Email cart reminder", "kind": "email", "state": "Hold: Email cart reminder",
                 "entered_at": "2026-05-04T12:00:01Z", "left_at": None, "outcome": None},
            ],
        },
    ],
}  # fmt: skip


def row(text: str, first_cell: str) -> list[str]:
    """The cells of the line starting with `first_cell` (cells are 2+ spaces apart)."""
    for line in text.splitlines():
        if line.strip().startswith(first_cell):
            return re.split(r"\s{2,}", line.strip())
    raise AssertionError(f"no line starts with {first_cell!r} in:\n{text}")


# --- All workflows ---------------------------------------------------------------------------


def test_workflows_are_rows_by_id_with_a_total_line() -> None:
    text = render_workflows(ALL_STATS, PLAIN)
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("WORKFLOW"))
    assert header.split() == [
        "WORKFLOW", "NAME", "ENTERED", "ACTIVE", "COMPLETED", "GOAL", "EXITED", "CONVERSION",
    ]  # fmt: skip
    ids = [line.split()[0] for line in lines[lines.index(header) + 1 :] if line[:1].islower()]
    assert ids == ["cart-abandonment", "lead-nurture", "welcome-series"]
    assert row(text, "cart-abandonment") == [
        "cart-abandonment", "Cart abandonment", "1,200", "3", "7", "300", "0", "25.0 %",
    ]  # fmt: skip
    # THEN the total adds up, and its conversion counts only workflows with a goal
    assert row(text, "TOTAL") == ["TOTAL", "3 workflows", "1,240", "8", "42", "300", "0", "25.0 %"]
    assert "as of 2026-05-04 10:15:02 UTC" in lines[0]


def test_no_goal_and_no_entries_show_a_dash_not_zero_percent() -> None:
    text = render_workflows(ALL_STATS, PLAIN)
    assert row(text, "welcome-series")[-3:] == ["–", "0", "–"]  # goal, exited, conversion
    assert row(text, "lead-nurture")[-1] == "–"  # nobody entered: no rate


def test_numbers_are_right_aligned_under_their_heading() -> None:
    lines = render_workflows(ALL_STATS, PLAIN).splitlines()
    header = next(line for line in lines if line.startswith("WORKFLOW"))
    ends = header.index("ENTERED") + len("ENTERED")
    for line in lines:
        if line.startswith(("cart-", "lead-", "welcome-", "TOTAL")):
            assert line[ends - 1] != " " and line[ends] == " ", line


def test_no_workflows_says_so() -> None:
    text = render_workflows({"generated_at": "2026-05-04T10:15:02Z", "workflows": []}, PLAIN)
    assert "No workflows are deployed." in text
    assert "WORKFLOW" not in text


# --- One workflow ----------------------------------------------------------------------------


def test_workflow_totals_and_the_funnel_box_by_box() -> None:
    text = render_workflow(WORKFLOW_STATS, PLAIN)
    assert text.startswith("Cart abandonment (cart-abandonment)")
    assert "entered 12 · active 3 · completed 7 · goal reached 2" in text
    assert "conversion 16.7 %" in text
    funnel = text.split("Funnel\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert funnel[0].split() == ["STEP", "KIND", "PASSED", "WAITING"]
    assert [re.split(r"\s{2,}", line) for line in funnel[1:]] == [
        ["Added to cart", "trigger", "12", "0"],
        ["Checked out within 2 h?", "wait_for_event", "10", "2"],
        ["Push cart reminder", "push", "5", "0"],
        ["Email cart reminder with similar products", "email", "4", "1"],
        ["Reminded", "end", "4", "0"],
    ]


def test_send_steps_have_their_message_rates() -> None:
    text = render_workflow(WORKFLOW_STATS, PLAIN)
    table = text.split("Messages\n", 1)[1].split("\n\n", 1)[0]
    assert table.splitlines()[0].split() == [
        "STEP", "SENT", "DELIVERED", "OPEN", "CLICK", "BOUNCE", "UNSUB",
    ]  # fmt: skip
    assert row(table, "Email cart") == [
        "Email cart reminder with similar products", "4", "4", "50.0 %", "25.0 %", "0.0 %", "0.0 %",
    ]  # fmt: skip
    # THEN rates over sent (nothing delivered yet) are marked and explained
    assert row(table, "Push cart") == [
        "Push cart reminder",
        "5",
        "0",
        "20.0 %*",
        "0.0 %*",
        "–",
        "–",
    ]
    assert "* open and click rates over messages sent" in table


def test_a_workflow_without_send_steps_says_so() -> None:
    answer = {**WORKFLOW_STATS, "funnel": WORKFLOW_STATS["funnel"][:2]}
    assert "Messages\nNo send steps." in render_workflow(answer, PLAIN)


def test_contacts_here_now_by_step_label() -> None:
    text = render_workflow(WORKFLOW_STATS, PLAIN)
    here = text.split("Contacts here now", 1)[1]
    assert here.startswith(" (3 running journeys)")
    assert row(here, "ana") == ["ana", "Checked out within 2 h?", "2026-05-04 10:00:00"]
    assert row(here, "bob") == [
        "bob",
        "Email cart reminder with similar products",
        "2026-05-04 10:14:00",
    ]


def test_at_most_twenty_contacts_then_and_n_more() -> None:
    contacts = [
        {"contact_id": f"c-{n:02}", "step": "checked-out", "state": "x", "since": None}
        for n in range(23)
    ]
    positions = {"executions": 25, "unknown": 2, "truncated": True, "contacts": contacts}
    text = render_workflow({**WORKFLOW_STATS, "positions": positions}, PLAIN)
    assert "c-19" in text and "c-20" not in text
    assert "\nand 3 more\n" in text
    assert "2 more at a step that could not be read" in text
    assert "only the newest 25 running journeys were read" in text


def test_positions_not_read() -> None:
    text = render_workflow({**WORKFLOW_STATS, "positions": None}, PLAIN)
    assert text.rstrip().endswith("Contacts here now\nNot read (--no-positions).")


def test_positions_that_could_not_be_read_say_why() -> None:
    positions = {
        "executions": 0,
        "unknown": 0,
        "truncated": False,
        "contacts": [],
        "error": "AccessDenied",
    }
    text = render_workflow({**WORKFLOW_STATS, "positions": positions}, PLAIN)
    assert text.rstrip().endswith("Contacts here now\nNot read: AccessDenied")


def test_nobody_here_now() -> None:
    positions = {"executions": 0, "unknown": 0, "truncated": False, "contacts": []}
    text = render_workflow({**WORKFLOW_STATS, "positions": positions}, PLAIN)
    assert "Nobody is in this journey right now." in text


# --- A contact's timeline --------------------------------------------------------------------


def test_timeline_newest_journey_first_with_steps_in_time_order() -> None:
    text = render_timeline(TIMELINE, PLAIN)
    assert text.startswith("Contact ana: 2 journeys, times in UTC")
    cart, welcome = text.index("Cart abandonment (cart-abandonment)"), text.index("Welcome series")
    assert cart < welcome
    assert "Cart abandonment (cart-abandonment) · running · entered 2026-05-04 10:00:00\n" in text
    assert (
        "Welcome series (welcome-series) · completed · entered 2026-05-01 09:00:00 · "
        "ended 2026-05-03 09:00:00" in text
    )
    assert row(text, "2026-05-04 10:00:00") == [
        "2026-05-04 10:00:00",
        "Checked out within 2 h?",
        "No",
    ]
    assert row(text, "2026-05-04 12:00:00") == [
        "2026-05-04 12:00:00",
        "Push cart reminder",
        "skipped: quiet hours",
    ]
    # THEN the step a running journey is at says so
    assert row(text, "2026-05-04 12:00:01") == [
        "2026-05-04 12:00:01",
        "Email cart reminder",
        "◀ here now",
    ]
    assert (
        "console: https://console.aws.amazon.com/states/home#/v2/executions/details/arn:1" in text
    )


def test_a_contact_without_journeys() -> None:
    assert "No journeys yet." in render_timeline({"contact_id": "zoe", "journeys": []}, PLAIN)


# --- Terminal width and colours --------------------------------------------------------------


def funnel_lines(text: str) -> list[str]:
    return text.split("Funnel\n", 1)[1].split("\n\n", 1)[0].splitlines()


@pytest.mark.parametrize("width", [42, 60, 80])
def test_labels_give_way_to_the_terminal_width(width: int) -> None:
    whole = max(map(display_width, funnel_lines(render_workflow(WORKFLOW_STATS, PLAIN))))
    # GIVEN a terminal narrower than the funnel (74 columns), wide enough for it once its
    # labels are cut to 8
    funnel = funnel_lines(render_workflow(WORKFLOW_STATS, Style(width=width)))
    # THEN the labels are cut to fit, and only when needed
    assert all(display_width(line) <= width for line in funnel), funnel
    assert any(ELLIPSIS in line for line in funnel) == (width < whole)
    # AND the numbers are never cut
    assert [line.split()[-2:] for line in funnel[1:]] == [
        ["12", "0"], ["10", "2"], ["5", "0"], ["4", "1"], ["4", "0"],
    ]  # fmt: skip


def test_a_table_too_wide_for_the_terminal_keeps_its_label_readable() -> None:
    funnel = funnel_lines(render_workflow(WORKFLOW_STATS, Style(width=20)))
    assert row("\n".join(funnel), "Checked")[0] == "Checked…"


def test_a_pipe_gets_whole_lines() -> None:
    text = render_workflows(ALL_STATS, Style(width=None))
    assert "Lead nurture for prospects who downloaded the whitepaper" in text
    assert ELLIPSIS not in text


def test_truncation_prefers_a_word_boundary() -> None:
    assert truncate("Push cart reminder", 18) == "Push cart reminder"
    assert truncate("Push cart reminder", 12) == "Push cart…"
    assert truncate("Checked out within 2 h?", 8) == "Checked…"
    assert truncate("Abcdefghijkl", 6) == "Abcde…"
    assert truncate("Envoyer le rappel 購物車", 20) == "Envoyer le rappel…"
    assert display_width(truncate("購物車提醒購物車提醒", 7)) <= 7
    assert truncate("anything", 1) == "…"


@pytest.mark.parametrize(
    ("render", "answer"),
    [(render_workflows, ALL_STATS), (render_workflow, WORKFLOW_STATS), (render_timeline, TIMELINE)],
)
def test_colours_do_not_move_columns_or_lines(render: Any, answer: dict[str, Any]) -> None:
    coloured = render(answer, Style(width=60, color=True))
    plain = render(answer, Style(width=60, color=False))
    assert "\x1b[" in coloured and "\x1b[" not in plain
    assert ANSI.sub("", coloured) == plain


def test_times_are_shown_in_utc() -> None:
    answer = {
        **TIMELINE,
        "journeys": [{**TIMELINE["journeys"][1], "entered_at": "2026-05-04T12:00:00+02:00"}],
    }
    assert "entered 2026-05-04 10:00:00" in render_timeline(answer, PLAIN)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colours_only_on_a_terminal_without_no_color() -> None:
    assert terminal_style(Terminal(), {"COLUMNS": "77"}) == Style(width=77, color=True)
    assert terminal_style(Terminal(), {"NO_COLOR": "1"}).color is False
    assert terminal_style(Terminal(), {"TERM": "dumb"}).color is False
    assert terminal_style(Terminal(), {}).width is not None
    # THEN a pipe gets whole lines, unless COLUMNS asks for a width
    assert terminal_style(io.StringIO(), {}) == Style(width=None, color=False)
    assert terminal_style(io.StringIO(), {"COLUMNS": "50"}) == Style(width=50, color=False)


# --- Where the API is ------------------------------------------------------------------------


def write_state(project: Path, **state: str) -> None:
    (project / ".journeys").mkdir(exist_ok=True)
    (project / ".journeys" / "local.json").write_text(json.dumps(state), encoding="utf-8")


def test_the_running_local_stack_is_the_default(tmp_path: Path) -> None:
    write_state(tmp_path, api_url="http://127.0.0.1:3000", api_key="local-1", aws_endpoint="x")
    endpoint = resolve_endpoint(None, None, str(tmp_path), environ={"JOURNEYS_API_KEY": "aws-key"})
    # THEN the shell's AWS key does not replace the stack's own
    assert endpoint == Endpoint("http://127.0.0.1:3000", "local-1", local=True)


def test_no_stack_and_no_api_says_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(StatsError) as error:
        resolve_endpoint(None, None, str(tmp_path), environ={})
    assert str(error.value) == NO_STACK and error.value.exit_code == 1


def test_a_broken_state_file_says_what_to_do(tmp_path: Path) -> None:
    write_state(tmp_path, api_url="http://127.0.0.1:3000")
    with pytest.raises(StatsError, match=r"has no api_url and api_key: restart"):
        resolve_endpoint(None, None, str(tmp_path), environ={})


def test_api_and_key_from_flags_or_environment(tmp_path: Path) -> None:
    url = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
    assert resolve_endpoint(url + "/v1/", "k", str(tmp_path), environ={}) == Endpoint(url, "k")
    environ = {"JOURNEYS_API_URL": url, "JOURNEYS_API_KEY": "env-key"}
    assert resolve_endpoint(None, None, str(tmp_path), environ=environ) == Endpoint(url, "env-key")
    assert resolve_endpoint(None, "flag", str(tmp_path), environ=environ).api_key == "flag"


@pytest.mark.parametrize(
    ("api", "message"),
    [
        ("https://abc.example.com/prod", "--api needs an API key: pass --api-key KEY"),
        ("abc.example.com", "is not an http(s) address"),
    ],
)
def test_bad_api_options_are_usage_errors(api: str, message: str) -> None:
    with pytest.raises(StatsError, match=re.escape(message)) as error:
        resolve_endpoint(api, None if "key" in message else "k", environ={})
    assert error.value.exit_code == 2


def test_paths_of_the_three_views() -> None:
    assert view_for(None, None).path == "/v1/stats"
    assert view_for("cart-abandonment", None).path == "/v1/workflows/cart-abandonment/stats"
    assert view_for("big", None, positions=False).path == "/v1/workflows/big/stats?positions=false"
    assert view_for(None, "user/42 x").path == "/v1/contacts/user%2F42%20x/timeline"


# --- The command line ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["cart-abandonment", "--contact", "ana"], "give a WORKFLOW or --contact ID, not both"),
        (["--no-positions"], "--no-positions goes with a WORKFLOW"),
        (["--api", "https://x.example.com/prod"], "--api needs an API key"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("seconds", ["0", "0.1", "soon"])
def test_watch_needs_a_sensible_interval(seconds: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        run(["--watch", seconds])
    assert stopped.value.code == 2
    assert "--watch" in capsys.readouterr().err


def test_no_stack_exits_1_with_the_advice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("JOURNEYS_API_URL", raising=False)
    assert run(["--project", str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"error: {NO_STACK}\n"


def test_help_teaches_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        run(["--help"])
    assert stopped.value.code == 0
    text = capsys.readouterr().out
    for example in (
        "journeys stats cart-abandonment --watch 2",
        "journeys stats --contact ana",
        "JOURNEYS_API_URL=https://",
        "exit status: 0 shown, 1",
    ):
        assert example in text


# --- Talking to the API (a real HTTP server on 127.0.0.1) ------------------------------------


@pytest.fixture
def server() -> Iterator[Server]:
    with serving() as running:
        yield running


def remote(server: Server) -> Endpoint:
    return Endpoint(server.base, "the-key")


def test_the_answer_is_read_with_the_key(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a proxy in the environment, which must not see requests to this machine
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    server.routes["/v1/stats"] = json_answer(ALL_STATS)
    assert fetch_json(remote(server), "/v1/stats") == ALL_STATS
    headers = {name.lower(): value for name, value in server.last().headers.items()}
    assert headers["x-api-key"] == "the-key"


@pytest.mark.parametrize(
    ("answer", "local", "message"),
    [
        (
            json_answer({"message": "Forbidden"}, 403),
            False,
            "the API refused the key (403 Forbidden) for GET {base}/v1/stats: check --api-key "
            "or JOURNEYS_API_KEY",
        ),
        (
            json_answer({"message": "Forbidden"}, 403),
            True,
            "may be left over from an earlier stack: restart `make run`",
        ),
        (
            json_answer({"message": "Missing Authentication Token"}, 403),
            False,
            "the API has no route for GET {base}/v1/stats: check the address (on AWS it ends "
            "with the stage",
        ),
        (
            json_answer({"message": "Internal server error"}, 502),
            False,
            "the API failed (502 Internal server error) on GET {base}/v1/stats: retry",
        ),
        (
            json_answer({"message": "Too Many Requests"}, 429),
            False,
            "the API is throttling requests (Too Many Requests)",
        ),
        (
            Answer(200, b"<html>dashboard</html>", {"Content-Type": "text/html"}),
            False,
            "the answer to GET {base}/v1/stats is not JSON (text/html: '<html>dashboard</html>')",
        ),
    ],
)
def test_failures_say_what_went_wrong(
    server: Server, answer: Answer, local: bool, message: str
) -> None:
    server.routes["/v1/stats"] = answer
    endpoint = Endpoint(server.base, "k", local=local)
    with pytest.raises(StatsError) as error:
        fetch_json(endpoint, "/v1/stats")
    assert message.format(base=server.base) in str(error.value)
    assert error.value.exit_code == 1


def test_not_found_is_the_apis_message_and_the_hint(server: Server) -> None:
    path = "/v1/workflows/nope/stats"
    server.routes[path] = json_answer(
        {"statusCode": 404, "message": "workflow 'nope' is not deployed", "detail": []}, 404
    )
    view = view_for("nope", None)
    with pytest.raises(StatsError) as error:
        fetch_json(remote(server), view.path, view.not_found_hint)
    assert str(error.value) == (
        "workflow 'nope' is not deployed; see `journeys stats` for the workflows"
    )


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_connection_refused_names_the_stack_or_the_api() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(StatsError, match=r"connection refused\): is `make run` still running"):
        fetch_json(Endpoint(url, "k", local=True), "/v1/stats")
    with pytest.raises(StatsError, match=r"cannot reach the API at .* \(connection refused\)"):
        fetch_json(Endpoint(url, "k"), "/v1/stats")


def test_json_prints_the_raw_answer(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    server.routes["/v1/stats"] = json_answer(ALL_STATS)
    assert run(["--api", server.base, "--api-key", "k", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == ALL_STATS


def test_watch_redraws_until_ctrl_c_and_survives_a_failed_refresh(server: Server) -> None:
    # GIVEN an API that answers, then fails, then answers again
    answers = iter(
        [
            json_answer(ALL_STATS),
            json_answer({"message": "Internal server error"}, 502),
            json_answer({**ALL_STATS, "generated_at": "2026-05-04T10:15:04Z"}),
        ]
    )
    server.routes["/v1/stats"] = lambda _: next(answers)
    frames: list[str] = []
    out = Terminal()

    def sleep(seconds: float) -> None:
        frames.append(out.getvalue())
        out.seek(0)
        out.truncate()
        if len(frames) == 3:
            raise KeyboardInterrupt

    # WHEN watching every 2 s until Ctrl-C
    assert watch(remote(server), view_for(None, None), 2, False, out, sleep=sleep) == 0
    # THEN each frame clears the screen; a failure keeps the last numbers and says why
    assert all(frame.startswith(CLEAR_SCREEN) for frame in frames)
    assert "10:15:02" in frames[1] and "last refresh failed (the API failed (502" in frames[1]
    assert "10:15:04" in frames[2] and "failed" not in frames[2]
    assert "every 2 s, Ctrl-C to stop" in frames[2]


def test_watch_stops_at_once_when_the_first_answer_fails(server: Server) -> None:
    server.routes["/v1/stats"] = json_answer({"message": "Forbidden"}, 403)
    with pytest.raises(StatsError, match="refused the key"):
        watch(remote(server), view_for(None, None), 2, False, io.StringIO(), sleep=time.sleep)
