"""How step kinds become states: one behaviour per test, on small workflows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from journeys.compiler.check import check_machine
from journeys.compiler.emit import SUBSTITUTIONS
from journeys.compiler.pipeline import render_machine
from tests.helpers.asl import EVENT, journey_states, walk
from tests.helpers.workflows import compile_one

SMS = {"sms": "channel: sms\ntext: Hi {{ contact.first_name }}\n"}


def machine_of(
    tmp_path: Path,
    steps: str,
    settings: str = "{time_zone: Europe/Paris}",
    extra: str = "",
    templates: dict[str, str] | None = None,
) -> dict[str, Any]:
    result = compile_one(
        tmp_path,
        f"""
id: demo
name: Demo
trigger: {{event: signed_up}}
settings: {settings}
{extra}
steps:
{steps}
""",
        templates=templates,
    )
    assert result.ok, [d.format() for d in result.diagnostics]
    assert result.machine is not None
    return result.machine


def all_states(machine: dict[str, Any]) -> dict[str, Any]:
    found = {}
    for name, state in machine["States"].items():
        found[name] = state
        for branch in state.get("Branches", []):
            found.update(all_states(branch))
    return found


def test_without_goal_or_exits_there_is_no_race(tmp_path: Path) -> None:
    machine = machine_of(
        tmp_path,
        "  - {type: wait, label: Pause, for: 2h}\n  - type: end",
        settings="{stop_on_unsubscribe: false}",
    )
    assert machine["StartAt"] == "Pause"
    assert machine["States"]["Pause"] == {
        "Type": "Wait",
        "Comment": "[pause] Wait 2h",
        "Seconds": 7200,
        "Next": "End",
    }
    assert machine["States"]["End"]["Type"] == "Succeed"


def test_goal_and_exits_race_the_journey(tmp_path: Path) -> None:
    machine = machine_of(
        tmp_path,
        "  - {type: wait, label: Pause, for: 2h}\n  - type: end",
        extra="goal: {label: Paid, event: payment_succeeded}\n"
        "exit: [{label: Churned, tag: churned}]",
    )
    race = machine["States"]["Demo"]
    assert race["Type"] == "Parallel"
    watches = [b["StartAt"] for b in race["Branches"][1:]]
    assert watches == ["Watch for: Paid", "Watch for: Churned", "Watch for: Unsubscribed"]
    goal_watch = race["Branches"][1]["States"]["Watch for: Paid"]
    assert goal_watch["Parameters"]["Payload"]["signal"] == "event:payment_succeeded"
    assert race["Branches"][1]["States"]["Paid"] == {
        "Type": "Fail",
        "Comment": "[goal] Paid",
        "Error": "Journeys.GoalReached",
        "Cause": "Paid",
    }
    assert {c["Next"] for c in race["Catch"]} == {
        "Goal reached",
        "Left the journey",
        "Journey completed",
    }
    assert journey_states(machine)["States"]["End"]["Error"] == "Journeys.Completed"


def test_every_task_retries_and_uses_only_known_substitutions(tmp_path: Path) -> None:
    machine = machine_of(
        tmp_path,
        """
  - {type: send_sms, label: Text, template: sms}
  - {type: add_tag, label: Tag, tag: t}
  - {type: fetch, label: Fetch, url: "https://x.example/api", save_as: info}
  - {type: start_workflow, label: Move, workflow: demo}
  - {type: repeat, label: Again, after: 7 days, times: 4}
""",
        templates=SMS,
    )
    tasks = [s for s in all_states(machine).values() if s["Type"] == "Task"]
    assert len(tasks) == 6  # five steps, and the watch for unsubscribes
    assert all(task["Retry"] for task in tasks)
    assert check_machine(machine) == []
    text = render_machine(machine)
    used = {part.split("}")[0] for part in text.split("${")[1:]}
    assert used <= set(SUBSTITUTIONS)


def test_quiet_hours_hold_sends_until_allowed(tmp_path: Path) -> None:
    machine = machine_of(
        tmp_path,
        "  - {type: send_sms, label: Text, template: sms}\n  - type: end",
        settings="{time_zone: Europe/Paris, quiet_hours: {start: '21:00', end: '08:00'}}",
        templates=SMS,
    )
    states = journey_states(machine)["States"]
    send = states["Text"]
    assert send["Catch"][0] == {
        "ErrorEquals": ["SendDeferred"],
        "ResultPath": "$.deferral",
        "Next": "Quiet hours or cap: Text",
    }
    assert send["Parameters"]["Payload"]["policy"]["quiet_hours"] == {
        "start": "21:00",
        "end": "08:00",
    }
    assert states["Hold: Text"]["TimestampPath"] == "$.deferral.until.errorMessage"
    assert states["Hold: Text"]["Next"] == "Text"


def test_failed_send_continues_unless_told_to_stop(tmp_path: Path) -> None:
    machine = machine_of(
        tmp_path,
        """
  - {type: send_sms, label: Soft, template: sms}
  - {type: send_sms, label: Hard, template: sms, on_failure: stop}
  - type: end
""",
        templates=SMS,
    )
    states = journey_states(machine)["States"]
    assert states["Soft"]["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.last_error", "Next": "Hard"}
    ]
    assert "Catch" not in states["Hard"]


def test_wait_for_event_has_both_paths(tmp_path: Path) -> None:
    machine = machine_of(
        tmp_path,
        """
  - type: wait_for_event
    label: Paid within 2 days?
    event: payment_succeeded
    where: {amount: {gt: 10}}
    timeout: 2 days
    yes: [{type: change_score, label: Reward, by: 10}]
    no: [{type: send_sms, label: Remind, template: sms}]
  - type: end
""",
        templates=SMS,
    )
    wait = journey_states(machine)["States"]["Paid within 2 days?"]
    assert wait["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert wait["TimeoutSeconds"] == 172800
    assert wait["Parameters"]["Payload"]["where"] == {"amount": {"gt": 10.0}}
    assert walk(machine, {"Paid within 2 days?": EVENT}) == ["Paid within 2 days?", "Reward", "End"]
    assert walk(machine) == ["Paid within 2 days?", "Remind", "End"]


def test_split_and_ab_split(tmp_path: Path) -> None:
    machine = machine_of(
        tmp_path,
        """
  - type: split
    label: Which plan?
    paths:
      - {label: Pro, condition: {attribute: plan, equals: pro}, steps: [{type: end, label: Pro end}]}
      - {label: Team, condition: {attribute: plan, equals: team}}
  - type: ab_split
    label: Subject test
    variants:
      - {label: Short, weight: 40}
      - {label: Long, weight: 40}
    holdout: {weight: 20, measure_for: 14 days}
  - type: end
""",
    )
    states = journey_states(machine)["States"]
    check = states["Check: Which plan?"]["Parameters"]["Payload"]["paths"]
    assert check == [
        {"branch": "1", "condition": {"attribute": "plan", "equals": "pro"}},
        {"branch": "2", "condition": {"attribute": "plan", "equals": "team"}},
    ]
    assert [c["NumericLessThan"] for c in states["Subject test"]["Choices"]] == [40, 80]
    assert walk(machine, {"Which plan?": "Pro"})[-1] == "Pro end"
    assert walk(machine, {"Which plan?": "Team", "Subject test": "Long"})[-1] == "End"
    assert walk(machine, {"Subject test": "Default"})[-2:] == [
        "Holdout: measure 14 days",
        "Holdout",
    ]


def test_wait_until_fixed_date_is_utc_and_attribute_dates_are_scheduled(tmp_path: Path) -> None:
    machine = machine_of(
        tmp_path,
        """
  - {type: wait_until, label: Launch day, date: "2027-01-15T09:00:00+01:00"}
  - {type: wait_until, label: Ten days before due, attribute: due_date, offset: -10 days, at: "09:00"}
  - type: end
""",
    )
    states = journey_states(machine)["States"]
    assert states["Launch day"]["Timestamp"] == "2027-01-15T08:00:00Z"
    payload = states["Schedule: Ten days before due"]["Parameters"]["Payload"]
    assert (payload["attribute"], payload["offset_seconds"], payload["time_zone"]) == (
        "due_date",
        -864000,
        "Europe/Paris",
    )
    assert states["Ten days before due"]["TimestampPath"] == "$.schedule.until"


def test_repeat_continues_as_new_execution(tmp_path: Path) -> None:
    machine = machine_of(tmp_path, "  - {type: repeat, label: Next week, after: 7 days, times: 3}")
    states = journey_states(machine)["States"]
    more = states["Runs left? Next week"]
    assert more["Choices"][0]["NumericLessThan"] == 2 and more["Default"] == "Done: Next week"
    start = states["Next week"]
    assert start["Resource"] == "arn:aws:states:::states:startExecution"
    assert start["Parameters"]["StateMachineArn.$"] == "$$.StateMachine.Id"
    assert start["Parameters"]["Input"]["iteration.$"] == "States.MathAdd($.iteration, 1)"


def test_output_is_deterministic(tmp_path: Path) -> None:
    steps = "  - {type: add_tag, label: Tag, tag: t}\n  - type: end"
    first = render_machine(machine_of(tmp_path / "a", steps))
    second = render_machine(machine_of(tmp_path / "b", steps))
    assert first == second
    assert json.loads(first)


def test_check_reports_broken_machines() -> None:
    machine = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Task", "Resource": "x", "Next": "Nowhere"},
            "B": {"Type": "Pass", "Next": "A"},
            "C" * 81: {"Type": "Wait", "Seconds": 1, "End": True},
            "D": {"Type": "Pass", "Parameters": {"x": "${Unknown}"}, "End": True},
        },
    }
    problems = "\n".join(check_machine(machine))
    assert '"A" goes to "Nowhere"' in problems
    assert 'Task "A" has no Retry' in problems
    assert 'state "B" is unreachable' in problems
    assert "longer than 80" in problems
    assert "unknown substitution ${Unknown}" in problems


def test_a_label_never_takes_an_explicit_id(tmp_path: Path) -> None:
    # GIVEN a step labelled "Email" (slug "email") before a step whose id is "email"
    machine = machine_of(
        tmp_path,
        """
  - {type: send_sms, label: Email, template: sms}
  - {type: wait, label: Pause, for: 1 day}
  - {id: email, type: send_sms, label: The real one, template: sms}
  - {type: wait, label: Pause again, for: 1 day}
  - {type: goto, label: Back to the real one, step: email, max_times: 1}
  - type: end
""",
        templates=SMS,
    )
    # THEN the jump lands on the step with that id
    counter = journey_states(machine)["States"]["Count: Back to the real one"]
    assert counter["Next"] == "The real one"


def test_goal_then_steps_run_after_the_race(tmp_path: Path) -> None:
    # GIVEN a goal with follow-up steps
    machine = machine_of(
        tmp_path,
        "  - {type: wait, label: Pause, for: 2h}\n  - type: end",
        extra="""goal:
  label: Bought
  event: checkout_completed
  then:
    - {type: remove_from_audience, label: Stop retargeting, audience: visitors, network: facebook}
    - {type: send_sms, label: Say thanks, template: sms}""",
        templates=SMS,
    )
    # THEN the race hands the converted contact to them, and they end in "Goal reached"
    race = machine["States"]["Demo"]
    goal_catch = next(c for c in race["Catch"] if c["ErrorEquals"] == ["Journeys.GoalReached"])
    assert goal_catch["Next"] == "Stop retargeting"
    assert machine["States"]["Stop retargeting"]["Next"] == "Say thanks"
    assert machine["States"]["Say thanks"]["Next"] == "Goal reached"
    assert machine["States"]["Goal reached"]["Type"] == "Succeed"
    assert "Say thanks" not in journey_states(machine)["States"]


def test_goto_cannot_cross_into_goal_steps(tmp_path: Path) -> None:
    result = compile_one(
        tmp_path,
        """
id: demo
name: Demo
trigger: {event: signed_up}
goal:
  label: Bought
  event: checkout_completed
  then: [{id: thanks, type: add_tag, label: Thank, tag: buyer}]
steps:
  - {type: goto, step: thanks}
""",
    )
    assert any(d.code == "jump-across-goal" for d in result.diagnostics)


def test_started_by_filters_and_event_dates(tmp_path: Path) -> None:
    machine = machine_of(
        tmp_path,
        """
  - type: decision
    label: Pricing page?
    condition: {started_by: signed_up, where: {url: {contains: /pricing}}}
  - {type: wait_until, label: Day before, event_property: starts_at, offset: -1 day}
  - type: end
""",
    )
    states = journey_states(machine)["States"]
    condition = states["Check: Pricing page?"]["Parameters"]["Payload"]["paths"][0]["condition"]
    assert condition == {"started_by": "signed_up", "where": {"url": {"contains": "/pricing"}}}
    schedule = states["Schedule: Day before"]["Parameters"]["Payload"]
    assert schedule["event_property"] == "starts_at" and "attribute" not in schedule


def test_loop_counters_never_collide_and_survive_the_race(tmp_path: Path) -> None:
    machine = machine_of(
        tmp_path,
        """
  - {id: again-a, type: wait, label: Pause A, for: 1 day}
  - {type: goto, label: Loop A, step: again-a, max_times: 2}
  - {id: again_a, type: wait, label: Pause B, for: 1 day}
  - {type: goto, label: Loop B, step: again_a, max_times: 2}
  - type: end
""",
        extra="goal: {label: Paid, event: paid}",
    )
    start = machine["States"][machine["StartAt"]]
    assert machine["StartAt"] == "Start journey" and start["Next"] == "Demo"
    assert start["Result"] == {"loop1": {"n": 0}, "loop2": {"n": 0}}
    states = journey_states(machine)["States"]
    assert states["Loop A"]["Choices"][0]["Variable"] == "$.loops.loop1.n"
    assert states["Loop B"]["Choices"][0]["Variable"] == "$.loops.loop2.n"


def test_team_alerts_ignore_the_contacts_quiet_hours(tmp_path: Path) -> None:
    machine = machine_of(
        tmp_path,
        "  - {type: notify_team, label: Tell sales, template: alert, to: sales@example.com}\n"
        "  - type: end",
        settings="{time_zone: Europe/Paris, quiet_hours: {start: '21:00', end: '08:00'}}",
        templates={"alert": "channel: team\nsubject: Hot lead\ntext: '{{ contact.email }}'\n"},
    )
    states = journey_states(machine)["States"]
    assert "policy" not in states["Tell sales"]["Parameters"]["Payload"]
    assert "Hold: Tell sales" not in states


def test_goal_then_steps_may_all_end(tmp_path: Path) -> None:
    machine = machine_of(
        tmp_path,
        "  - type: end",
        extra="goal: {label: Paid, event: paid, then: [{type: end, label: Thanked}]}",
    )
    assert machine["States"]["Thanked"]["Type"] == "Succeed"
    assert "Goal reached" not in machine["States"]
