"""`journeys up` and the commands that talk to a running local stack.

`journeys up` runs the stack in the foreground and writes where it listens to
`.journeys/local.json` in the project; `event`, `contact`, `import`, `executions` and
`outbox` read that file and use the stack's API (with its key) and AWS endpoint, exactly
as a web app or the AWS CLI would.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["add_commands", "parse_speed"]

STATE_FILE = Path(".journeys") / "local.json"
DEMO_CONTACTS = Path("demo") / "contacts.json"
_UNITS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
    **dict.fromkeys(("w", "week", "weeks"), 604800),
}


def parse_speed(text: str) -> float:
    """`3600`, `1h` or `1 day` (journey time per real second) -> the time scale."""
    cleaned = text.strip().lower().replace(" ", "")
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([a-z]*)", cleaned)
    if not match or (match.group(2) and match.group(2) not in _UNITS):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a speed: give the journey time that passes per real second, "
            'e.g. "1h" (an hour a second), "1d", or a plain factor such as 3600'
        )
    scale = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if scale <= 0:
        raise argparse.ArgumentTypeError("the speed must be greater than zero")
    return scale


def _describe_speed(scale: float) -> str:
    if scale == 1:
        return "real time"
    for name, seconds in (
        ("week", 604800),
        ("day", 86400),
        ("hour", 3600),
        ("minute", 60),
    ):
        if scale >= seconds and scale % seconds == 0:
            count = int(scale // seconds)
            return f"{count} {name}{'s' if count > 1 else ''} of journey time per second"
    return f"{scale:g}x real time"


# --- journeys up -----------------------------------------------------------------------


def command_up(args: argparse.Namespace) -> int:
    import logging

    from journeys.local.demo import (
        DEFAULT_SCENARIO,
        DemoRunner,
        InvalidScenario,
        load_scenario,
    )
    from journeys.local.stack import LocalStack

    root = Path(args.project).resolve()
    if not (root / "template.yaml").exists():
        print(
            f"error: {root} has no template.yaml; run this in the project directory "
            "or give --project",
            file=sys.stderr,
        )
        return 2
    scenario = None
    if not (args.no_demo or args.no_scenario) and (root / DEFAULT_SCENARIO).exists():
        try:  # before the stack starts: a broken scenario file fails at once
            scenario = load_scenario(root / DEFAULT_SCENARIO)
        except InvalidScenario as error:
            print(
                f"{error}\nerror: fix {DEFAULT_SCENARIO} or add --no-scenario",
                file=sys.stderr,
            )
            return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:  # Powertools' advice is for Lambda operators, not this terminal
        warnings.filterwarnings("ignore", module="aws_lambda_powertools")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    quiet = not args.verbose

    def progress(message: str) -> None:
        if args.verbose:
            print(f"  {message}", flush=True)

    print(f"Starting the local stack ({_describe_speed(args.speed)}) ...", flush=True)
    started = time.monotonic()
    stack = LocalStack(
        root,
        time_scale=args.speed,
        port=args.aws_port,
        api_port=args.api_port,
        progress=progress,
        quiet=quiet,
    )
    try:
        stack.start()
    except OSError as error:
        print(
            f"error: cannot listen ({error}); another stack running? Try --api-port "
            "and --aws-port, or stop the other one.",
            file=sys.stderr,
        )
        return 1
    demo = None
    try:
        loaded = _load_demo(stack, root) if not args.no_demo else 0
        if scenario is not None:
            demo = DemoRunner.for_stack(
                scenario,
                stack,
                progress=None if args.quiet_outbox else lambda line: print(line, flush=True),
            )
        state = {
            "api_url": stack.api_url,
            "api_key": stack.api_key,
            "aws_endpoint": stack.endpoint,
            "speed": args.speed,
        }
        state_path = root / STATE_FILE
        state_path.parent.mkdir(exist_ok=True)
        state_path.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
        journeys = [n for n in (stack.deployment.state_machines if stack.deployment else {})]
        machines = sum(1 for name in journeys if name.startswith("journeys-local-"))
        print(_banner(stack, machines, loaded, time.monotonic() - started), flush=True)
        if demo is not None:
            print(
                f"Demo scenario ({DEFAULT_SCENARIO}; --no-scenario to skip): {demo.describe()}.\n",
                flush=True,
            )
            demo.start()
        _wait_for_interrupt(stack, follow_outbox=not args.quiet_outbox)
    finally:
        print("\nStopping ...", flush=True)
        if demo is not None:
            demo.stop()
        stack.stop()
        (root / STATE_FILE).unlink(missing_ok=True)
    return 0


def _banner(stack: Any, machines: int, contacts: int, seconds: float) -> str:
    event = json.dumps(
        {
            "event_id": "demo-cart-1",
            "contact_id": "ana",
            "name": "added_to_cart",
            "properties": {"product_name": "Trail running shoes", "cart_items": 1},
        }
    )
    return f"""
Journeys is running locally ({seconds:.1f} s): {machines} workflows, {contacts} demo contacts.

  Dashboard  {stack.dashboard_url}
  API        {stack.api_url}/v1   (OpenAPI: {stack.api_url}/v1/openapi.json)
  API key    {stack.api_key}
  AWS        {stack.endpoint}
             (aws --endpoint-url {stack.endpoint} stepfunctions list-state-machines)

Send an event (Ana abandons her cart; a push and an email follow in a few seconds):

  curl -s -X POST {stack.api_url}/v1/events \\
    -H 'x-api-key: {stack.api_key}' -H 'content-type: application/json' \\
    -d '{event}'

Messages appear below as journeys send them (also: journeys outbox, journeys executions,
journeys stats).
Press Ctrl-C to stop.
"""


def _load_demo(stack: Any, root: Path) -> int:
    path = root / DEMO_CONTACTS
    if not path.exists():
        return 0
    contacts = json.loads(path.read_text(encoding="utf-8"))
    for contact in contacts:
        contact_id = contact.pop("contact_id")
        _request(
            {"api_url": stack.api_url, "api_key": stack.api_key},
            "PUT",
            f"/v1/contacts/{urllib.parse.quote(contact_id, safe='')}",
            contact,
        )
    return len(contacts)


def _wait_for_interrupt(stack: Any, follow_outbox: bool) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    seen = 0
    try:
        while not stop.wait(0.5):
            if follow_outbox and stack.outbox is not None:
                for entry in stack.outbox.entries(after=seen):
                    print(_outbox_line(entry.as_dict()), flush=True)
                    seen = entry.sequence
    except KeyboardInterrupt:
        pass


def _outbox_line(entry: dict[str, Any]) -> str:
    what = entry.get("subject") or (entry.get("body") or "")[:60].replace("\n", " ")
    return (
        f"[{entry['at'][:16].replace('T', ' ')}] {entry['channel']:<7} to {entry['to'] or '?'}"
        f"  {what}  ({entry['workflow_id']} / {entry['step_label'] or entry['step_id']})"
        + ("" if entry.get("status") == "sent" else f"  {entry['status']}")
    )


# --- commands against a running stack ---------------------------------------------------


def _state(project: str) -> dict[str, Any]:
    path = Path(project).resolve() / STATE_FILE
    try:
        state: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return state
    except FileNotFoundError:
        raise SystemExit(
            "error: no local stack is running here (start one with `make run` or "
            "`journeys up` in the project directory)"
        ) from None


def _request(
    state: dict[str, Any],
    method: str,
    path: str,
    body: Any = None,
    content_type: str = "application/json",
) -> Any:
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        state["api_url"] + path,
        data=data,
        method=method,
        headers={"x-api-key": state["api_key"], "content-type": content_type},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            text = response.read().decode()
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")
        raise SystemExit(f"error: {method} {path} answered {error.code}: {detail}") from None
    except urllib.error.URLError as error:
        raise SystemExit(
            f"error: the local stack at {state['api_url']} does not answer ({error.reason}); "
            "is `make run` still running?"
        ) from None
    return json.loads(text) if text else None


def _pairs(items: Sequence[str] | None, what: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"error: {what} {item!r} must look like key=value")
        try:
            values[key] = json.loads(raw)
        except json.JSONDecodeError:
            values[key] = raw
    return values


def command_event(args: argparse.Namespace) -> int:
    body = {
        "event_id": args.event_id or f"cli-{uuid.uuid4()}",
        "contact_id": args.contact_id,
        "name": args.name,
        "properties": _pairs(args.prop, "--prop"),
    }
    print(json.dumps(_request(_state(args.project), "POST", "/v1/events", body), indent=2))
    return 0


def command_contact(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"attributes": _pairs(args.attr, "--attr")}
    channels: dict[str, Any] = {}
    if args.email:
        channels["email"] = {"address": args.email, "status": "subscribed"}
    if args.phone:
        channels["sms"] = {"address": args.phone, "status": "subscribed"}
    if channels:
        body["channels"] = channels
    if args.tag:
        body["tags"] = {"add": args.tag}
    if args.list:
        body["lists"] = {"subscribe": args.list}
    if args.time_zone:
        body["time_zone"] = args.time_zone
    path = f"/v1/contacts/{urllib.parse.quote(args.contact_id, safe='')}"
    print(json.dumps(_request(_state(args.project), "PUT", path, body), indent=2))
    return 0


def command_import(args: argparse.Namespace) -> int:
    data = Path(args.file).read_bytes()
    query = f"?workflow_id={urllib.parse.quote(args.workflow)}" if args.workflow else ""
    answer = _request(_state(args.project), "POST", f"/v1/imports{query}", data, "text/csv")
    print(json.dumps(answer, indent=2))
    return 0


def command_outbox(args: argparse.Namespace) -> int:
    state = _state(args.project)
    query = {k: v for k, v in (("contact_id", args.contact), ("workflow_id", args.workflow)) if v}
    seen = 0
    while True:
        params = urllib.parse.urlencode({**query, "after": seen})
        entries = _request(state, "GET", f"/local/outbox?{params}")["messages"]
        for entry in entries:
            print(json.dumps(entry, indent=2) if args.json else _outbox_line(entry))
            seen = entry["sequence"]
        if not args.follow:
            if not entries and seen == 0:
                print("(the outbox is empty)")
            return 0
        time.sleep(0.5)


def command_executions(args: argparse.Namespace) -> int:
    import boto3

    state = _state(args.project)
    sfn = boto3.client(
        "stepfunctions",
        endpoint_url=state["aws_endpoint"],
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    machines = sfn.list_state_machines()["stateMachines"]
    rows = []
    for machine in machines:
        workflow = machine["name"].removeprefix("journeys-local-")
        if args.workflow and workflow != args.workflow:
            continue
        for execution in sfn.list_executions(stateMachineArn=machine["stateMachineArn"])[
            "executions"
        ]:
            if args.contact and not execution["name"].startswith(f"{workflow}_{args.contact}_"):
                continue
            rows.append((workflow, execution, _current_state(sfn, execution)))
    if not rows:
        print("(no executions yet)")
        return 0
    for workflow, execution, where in sorted(rows, key=lambda r: r[1]["startDate"]):
        print(
            f"{execution['startDate']:%Y-%m-%d %H:%M}  {execution['status']:<9} {workflow:<28} "
            f"{execution['name'][:60]:<60}  {where}"
        )
    return 0


def _current_state(sfn: Any, execution: dict[str, Any]) -> str:
    events = sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)[
        "events"
    ]
    entered = [
        e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e
    ]
    return entered[-1] if entered else ""


def add_commands(commands: Any) -> None:
    """Register the local-stack commands on the `journeys` CLI's subparsers."""
    up = commands.add_parser(
        "up",
        help="run the whole product locally (what `make run` does)",
        description="Start the local stack: moto on 127.0.0.1 with the resources of "
        "template.yaml and one state machine per compiled workflow, the project's handlers "
        "in process, and the API with an API key. Runs until Ctrl-C.",
        epilog="examples:\n  journeys up\n  journeys up --speed 1d     # a day of journey time "
        "per second\n  journeys up --speed 1      # real time",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    up.add_argument(
        "--speed",
        type=parse_speed,
        default=3600.0,
        help='journey time per real second: "1h" (default), "1d", "1" for real time',
    )
    up.add_argument("--api-port", type=int, default=3000, help="API port on 127.0.0.1 (3000)")
    up.add_argument(
        "--aws-port",
        type=int,
        default=5000,
        help="AWS endpoint (moto) port on 127.0.0.1 (5000)",
    )
    up.add_argument(
        "--no-demo",
        action="store_true",
        help="no demo at all: neither demo/contacts.json nor demo/scenario.yaml",
    )
    up.add_argument(
        "--no-scenario",
        action="store_true",
        help="load demo/contacts.json but do not play demo/scenario.yaml (contacts "
        "arriving, journeys and simulated recipients on their own)",
    )
    up.add_argument("--quiet-outbox", action="store_true", help="do not print sent messages")
    up.add_argument("--verbose", action="store_true", help="show each resource and handler log")
    up.add_argument("--project", default=".", help="the project directory (default: .)")
    up.set_defaults(run=command_up)

    event = commands.add_parser(
        "event",
        help="send an event to the local stack",
        epilog="example: journeys event ana added_to_cart --prop cart_items=2",
    )
    event.add_argument("contact_id")
    event.add_argument("name")
    event.add_argument(
        "--prop",
        action="append",
        metavar="KEY=VALUE",
        help="an event property (JSON values allowed); repeatable",
    )
    event.add_argument("--event-id", help="your id for the event (default: a new one)")
    event.add_argument("--project", default=".")
    event.set_defaults(run=command_event)

    contact = commands.add_parser(
        "contact",
        help="create or update a contact on the local stack",
        epilog="example: journeys contact ana --email ana@example.com "
        "--attr plan=free --list Newsletter",
    )
    contact.add_argument("contact_id")
    contact.add_argument("--email")
    contact.add_argument("--phone", help="E.164, e.g. +447700900123 (SMS consent given)")
    contact.add_argument("--attr", action="append", metavar="KEY=VALUE")
    contact.add_argument("--tag", action="append")
    contact.add_argument("--list", action="append", help="subscribe to this list")
    contact.add_argument("--time-zone")
    contact.add_argument("--project", default=".")
    contact.set_defaults(run=command_contact)

    imports = commands.add_parser(
        "import",
        help="import contacts from a CSV file",
        epilog="example: journeys import leads.csv --workflow lead-nurture",
    )
    imports.add_argument("file")
    imports.add_argument("--workflow", help="start this workflow for every row")
    imports.add_argument("--project", default=".")
    imports.set_defaults(run=command_import)

    executions = commands.add_parser(
        "executions", help="list journeys (executions) and where they are"
    )
    executions.add_argument("--workflow")
    executions.add_argument("--contact")
    executions.add_argument("--project", default=".")
    executions.set_defaults(run=command_executions)

    outbox = commands.add_parser(
        "outbox", help="what the local stack sent: email, SMS, push, webhooks"
    )
    outbox.add_argument("--contact")
    outbox.add_argument("--workflow")
    outbox.add_argument("--follow", "-f", action="store_true", help="keep printing new messages")
    outbox.add_argument("--json", action="store_true")
    outbox.add_argument("--project", default=".")
    outbox.set_defaults(run=command_outbox)
