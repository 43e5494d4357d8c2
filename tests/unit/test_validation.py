"""Broken workflows produce errors that name the line, column, step, problem and fix."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from journeys.compiler.diagnostics import Diagnostic, Severity
from journeys.compiler.pipeline import compile_text
from journeys.compiler.validate import TemplateIndex
from tests.helpers.workflows import compile_one, only

HEADER = """
id: demo
name: Demo
trigger: {event: signed_up}
settings: {time_zone: Europe/Paris}
"""


def errors_of(tmp_path: Path, body: str, **kwargs: object) -> list:  # type: ignore[type-arg]
    result = compile_one(tmp_path, HEADER + body, **kwargs)  # type: ignore[arg-type]
    return result.diagnostics


def single_error(tmp_path: Path, body: str, code: str, **kwargs: object) -> Diagnostic:
    """The one diagnostic with `code` for a workflow made of HEADER and `body`."""
    return only(errors_of(tmp_path, body, **kwargs), code)


def test_valid_workflow_compiles(tmp_path: Path) -> None:
    result = compile_one(
        tmp_path,
        HEADER
        + """
steps:
  - type: send_email
    label: Say hello
    template: hello
  - type: end
""",
    )
    assert result.ok, [d.format() for d in result.diagnostics]
    assert result.machine is not None


def test_misspelt_step_type_suggests_the_right_one(tmp_path: Path) -> None:
    diagnostics = errors_of(
        tmp_path,
        """
steps:
  - type: send_emial
    label: Say hello
    template: hello
  - type: end
""",
    )
    error = only(diagnostics, "union_tag_invalid")
    assert (error.line, error.column) == (7, 5)
    assert 'unknown step type "send_emial"' in error.message
    assert 'Did you mean "send_email"?' in error.message
    assert error.step == "Say hello"


def test_misspelt_field_suggests_the_right_one(tmp_path: Path) -> None:
    diagnostics = errors_of(
        tmp_path,
        """
steps:
  - type: send_email
    label: Say hello
    templte: hello
  - type: end
""",
    )
    error = only(diagnostics, "extra_forbidden")
    assert (error.line, error.column) == (9, 5)
    assert 'unknown field "templte". Did you mean "template"?' in error.message
    assert "template" in error.hint
    # One mistake, one error: not also "missing required field template".
    assert not any(d.code == "missing" for d in diagnostics)


def test_bad_duration_explains_the_format(tmp_path: Path) -> None:
    diagnostics = errors_of(
        tmp_path,
        """
steps:
  - type: wait
    label: Pause
    for: 3 dayz
  - type: end
""",
    )
    error = only(diagnostics, "value_error")
    assert error.line == 9
    assert "unknown time unit 'dayz'" in error.message
    assert '"3 days"' in error.message


def test_bare_number_is_not_a_duration(tmp_path: Path) -> None:
    error = single_error(
        tmp_path,
        """
steps:
  - {type: wait, label: Pause, for: 30}
  - type: end
""",
        "value_error",
    )
    assert "no unit" in error.message


def test_dangling_jump(tmp_path: Path) -> None:
    diagnostics = errors_of(
        tmp_path,
        """
steps:
  - id: greet
    type: send_email
    label: Say hello
    template: hello
  - type: goto
    step: gret
""",
    )
    error = only(diagnostics, "dangling-jump")
    assert error.line == 12
    assert 'no step has that id. Did you mean "greet"?' in error.message


def test_unreachable_step(tmp_path: Path) -> None:
    error = single_error(
        tmp_path,
        """
steps:
  - type: end
  - type: send_email
    label: Never sent
    template: hello
  - type: end
    label: Also never
""",
        "unreachable",
    )
    assert error.line == 8  # reported once, where the dead region starts
    assert error.step == "Never sent"


def test_path_without_end(tmp_path: Path) -> None:
    error = single_error(
        tmp_path,
        """
steps:
  - type: decision
    label: Is VIP?
    condition: {tag: vip}
    yes:
      - type: end
        label: VIP done
  - type: send_email
    label: Say hello
    template: hello
""",
        "no-end",
    )
    assert error.line == 13
    assert "without an end" in error.message
    assert "type: end" in error.hint


def test_loop_without_wait(tmp_path: Path) -> None:
    error = single_error(
        tmp_path,
        """
steps:
  - id: greet
    type: send_email
    label: Say hello
    template: hello
  - type: goto
    label: Again
    step: greet
    max_times: 3
  - type: end
""",
        "loop-without-wait",
    )
    assert error.line == 11
    assert "no wait" in error.message


def test_unbounded_loop_needs_max_times(tmp_path: Path) -> None:
    error = single_error(
        tmp_path,
        """
steps:
  - id: pause
    type: wait
    label: Pause
    for: 1 day
  - type: goto
    step: pause
""",
        "unbounded-loop",
    )
    assert "max_times" in error.hint and "repeat" in error.hint


def test_loop_that_would_overflow_the_history(tmp_path: Path) -> None:
    error = single_error(
        tmp_path,
        """
steps:
  - id: nudge
    type: send_email
    label: Nudge
    template: hello
  - type: wait
    label: Pause
    for: 1 min
  - type: goto
    label: Nudge again
    step: nudge
    max_times: 5000
  - type: end
""",
        "history-limit",
    )
    assert error.line == 17
    assert "25,000" in error.message
    assert "repeat" in error.hint


def test_duplicate_ids_and_labels(tmp_path: Path) -> None:
    diagnostics = errors_of(
        tmp_path,
        """
steps:
  - id: hello
    type: send_email
    label: Say hello
    template: hello
  - id: hello
    type: send_email
    label: Say hello
    template: hello
  - type: end
""",
    )
    duplicate_id = only(diagnostics, "duplicate-id")
    assert duplicate_id.line == 11
    assert "first used on line 7" in duplicate_id.message
    duplicate_label = only(diagnostics, "duplicate-label")
    assert duplicate_label.line == 13
    assert '"Say hello" is already the name of the step on line 7' in duplicate_label.message


def test_label_too_long_for_a_state_name(tmp_path: Path) -> None:
    label = "Is this contact " + "really " * 10 + "engaged?"
    error = only(
        errors_of(
            tmp_path,
            f"""
steps:
  - type: decision
    label: {label}
    condition: {{tag: engaged}}
  - type: end
""",
        ),
        "label-too-long",
    )
    assert error.line == 8
    assert "at most 73 characters" in error.hint  # "Check: " takes 7 of the 80


def test_wait_longer_than_a_year(tmp_path: Path) -> None:
    error = single_error(
        tmp_path,
        """
steps:
  - type: wait
    label: Hibernate
    for: 400 days
  - type: end
""",
        "wait-too-long",
    )
    assert error.line == 9
    assert "longer than one year" in error.message


def test_time_window_without_time_zone(tmp_path: Path) -> None:
    result = compile_one(
        tmp_path,
        """
id: demo
name: Demo
trigger: {event: signed_up}
steps:
  - type: wait_for_window
    label: Office hours
    days: [mon, tue, wed, thu, fri]
  - type: end
""",
    )
    error = only(result.diagnostics, "no-time-zone")
    assert error.line == 5
    assert "settings: time_zone" in error.hint


def test_unknown_time_zone_suggests_one(tmp_path: Path) -> None:
    result = compile_one(
        tmp_path,
        """
id: demo
name: Demo
trigger: {event: signed_up}
settings: {time_zone: Europe/Pariss}
steps:
  - type: end
""",
    )
    assert any('Did you mean "Europe/Paris"?' in d.message for d in result.diagnostics)


def test_missing_template_suggests_one(tmp_path: Path) -> None:
    error = single_error(
        tmp_path,
        """
steps:
  - type: send_email
    label: Say hello
    template: helo
  - type: end
""",
        "missing-template",
    )
    assert error.line == 9
    assert 'Did you mean "hello"?' in error.message


def test_template_variable_the_step_cannot_know(tmp_path: Path) -> None:
    templates = {
        "recs": """
        channel: email
        subject: Picked for you
        html: "{% for p in data.recommendations %}{{ p.name }}{% endfor %}"
        text: "{{ contact.first_name }} {{ cart.total }}"
        """
    }
    diagnostics = errors_of(
        tmp_path,
        """
steps:
  - type: send_email
    label: Recommend
    template: recs
  - type: fetch
    label: Fetch recommendations
    url: https://example.com/recs
    save_as: recommendations
  - type: end
""",
        templates=templates,
    )
    unknown = [d for d in diagnostics if d.code == "unknown-variable"]
    messages = " | ".join(d.message for d in unknown)
    assert "data.recommendations" in messages and "no fetch step" in messages
    assert '"cart.total"' in messages
    assert all(d.line == 9 for d in unknown)


def test_event_variables_need_an_event_trigger(tmp_path: Path) -> None:
    templates = {
        "t": """
        channel: sms
        text: "Your order {{ event.order_id }}"
        """
    }
    result = compile_one(
        tmp_path,
        """
id: demo
name: Demo
trigger: {tag_added: vip}
steps:
  - {type: send_sms, label: Text, template: t}
  - type: end
""",
        templates=templates,
    )
    error = only(result.diagnostics, "unknown-variable")
    assert "not started by an event" in error.message


def test_template_channel_must_match_the_step(tmp_path: Path) -> None:
    error = single_error(
        tmp_path,
        """
steps:
  - {type: send_sms, label: Text, template: hello}
  - type: end
""",
        "template-channel",
    )
    assert "is an email template, but this step sends sms" in error.message


def test_frequency_cap_warning(tmp_path: Path) -> None:
    result = compile_one(
        tmp_path,
        """
id: demo
name: Demo
trigger: {event: signed_up}
settings:
  frequency_cap: {max: 1, per: 1 day}
steps:
  - {type: send_email, label: One, template: hello}
  - {type: wait, label: Short pause, for: 1h}
  - {type: send_email, label: Two, template: hello}
  - {type: wait, label: Long pause, for: 2 days}
  - {type: send_email, label: Three, template: hello}
  - type: end
""",
    )
    warning = only(result.diagnostics, "frequency-cap")
    assert warning.severity is Severity.WARNING
    assert "up to 2 messages within 1 day" in warning.message
    assert result.ok  # a warning does not block compiling


def test_all_errors_reported_at_once(tmp_path: Path) -> None:
    diagnostics = errors_of(
        tmp_path,
        """
steps:
  - type: wait
    label: Pause
    for: forever
  - type: send_sms
    labl: Text
  - type: jump
""",
    )
    assert len([d for d in diagnostics if d.is_error]) >= 4
    assert sorted({d.line for d in diagnostics}) == [9, 10, 11, 12]


def test_misspelt_condition_key(tmp_path: Path) -> None:
    diagnostics = errors_of(
        tmp_path,
        """
steps:
  - type: decision
    label: VIP?
    condition: {tagg: vip}
  - type: end
""",
    )
    error = only(diagnostics, "condition_kind")
    assert 'Did you mean "tag"?' in error.message
    assert error.line == 9


def test_opened_must_name_a_send_step(tmp_path: Path) -> None:
    error = single_error(
        tmp_path,
        """
steps:
  - {id: welcome, type: send_email, label: Welcome, template: hello}
  - {type: wait, label: Pause, for: 1 day}
  - type: decision
    label: Opened?
    condition: {opened: welcom}
  - type: end
""",
        "dangling-message",
    )
    assert 'Did you mean "welcome"?' in error.message
    assert error.line == 11


def test_file_name_must_match_id(tmp_path: Path) -> None:
    result = compile_one(tmp_path, HEADER + "steps:\n  - type: end\n", name="other")
    error = only(result.diagnostics, "id-file-name")
    assert "rename the file to demo.yaml" in error.hint


def test_start_workflow_must_exist(tmp_path: Path) -> None:
    error = single_error(
        tmp_path,
        """
steps:
  - {type: start_workflow, label: Nurture, workflow: nurture}
  - type: end
""",
        "unknown-workflow",
    )
    assert 'there is no workflow "nurture"' in error.message


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("id: demo\nname: [unclosed\n", 3, "not valid YAML"),
        ("id: demo\n\tname: tab\n", 2, "not valid YAML"),
        ("- just\n- a list\n", 1, "must be a mapping"),
        ("", 1, "empty"),
        ("id: demo\nname: A\nname: B\n", 3, 'duplicate key "name"'),
    ],
)
def test_malformed_yaml_is_an_error_not_a_crash(
    tmp_path: Path, text: str, line: int, fragment: str
) -> None:
    result = compile_text(text, "demo.yaml", TemplateIndex(tmp_path))
    assert not result.ok
    first = result.diagnostics[0]
    assert fragment in first.message
    assert first.line == line


def test_random_damage_to_reference_workflows_never_crashes(tmp_path: Path) -> None:
    """Delete or duplicate lines and characters of real workflows: always diagnostics."""
    rng = random.Random(20261122)
    sources = sorted(Path("workflows").glob("*.yaml"))
    assert sources
    index = TemplateIndex(Path("workflows/templates"))
    for attempt in range(300):
        lines = rng.choice(sources).read_text(encoding="utf-8").splitlines(keepends=True)
        for _ in range(rng.randint(1, 3)):
            position = rng.randrange(len(lines))
            action = rng.choice(("drop", "dup", "chop", "indent"))
            if action == "drop":
                del lines[position]
            elif action == "dup":
                lines.insert(position, lines[position])
            elif action == "chop":
                lines[position] = lines[position][: rng.randrange(len(lines[position]) + 1)]
            else:
                lines[position] = " " + lines[position]
            if not lines:
                break
        result = compile_text("".join(lines), f"damaged-{attempt}.yaml", index)
        for diagnostic in result.diagnostics:
            assert diagnostic.line >= 1 and diagnostic.column >= 1


def test_marketing_email_needs_an_unsubscribe_link(tmp_path: Path) -> None:
    templates = {
        "promo": """
        channel: email
        subject: Sale
        html: "<p>50% off</p>"
        text: "50% off"
        """
    }
    diagnostics = errors_of(
        tmp_path,
        """
steps:
  - {type: send_email, label: Promo, template: promo}
  - type: end
""",
        templates=templates,
    )
    error = only(diagnostics, "no-unsubscribe-link")
    assert error.file.endswith("templates/promo.yaml")
    assert error.line == 4
    assert "transactional: true" in error.hint


@pytest.mark.parametrize(
    ("extra", "code", "fragment"),
    [
        (
            "goal: {label: Done, event: a}\nexit: [{label: Done, event: b}]",
            "duplicate-label",
            '"Done" is already the name of the goal',
        ),
        (
            "goal: {label: Journey completed, event: a}",
            "reserved-label",
            '"Journey completed" is already the name of Journeys itself',
        ),
        (
            "exit: [{label: Unsubscribed, event: unsubscribe_all}]",
            "duplicate-label",
            '"Unsubscribed" is already the name of the exit that stop_on_unsubscribe adds',
        ),
        (
            "goal: {label: " + "The contact upgraded to a paid plan " * 2 + ", event: a}",
            "label-too-long",
            "shorten it to at most 69 characters",
        ),
    ],
)
def test_goal_and_exit_labels_are_state_names_too(
    tmp_path: Path, extra: str, code: str, fragment: str
) -> None:
    result = compile_one(tmp_path, HEADER + extra + "\nsteps:\n  - type: end\n")
    error = only(result.diagnostics, code)
    assert fragment in error.message + error.hint
    assert result.machine is None  # reported as the author's error, not the compiler's


def test_workflow_name_must_fit_a_state_name_when_racing(tmp_path: Path) -> None:
    long_name = "A very long workflow name " * 4
    result = compile_one(
        tmp_path, HEADER.replace("name: Demo", f"name: {long_name}") + "steps:\n  - type: end\n"
    )
    error = only(result.diagnostics, "label-too-long")
    assert error.line == 2


def test_unlabelled_ends_are_numbered(tmp_path: Path) -> None:
    result = compile_one(
        tmp_path,
        HEADER
        + """
steps:
  - type: decision
    label: VIP?
    condition: {tag: vip}
    yes: [{type: end}]
  - type: end
""",
    )
    assert result.ok, [d.format() for d in result.diagnostics]
    assert result.journey is not None
    assert sorted(n.label for n in result.journey.nodes.values() if n.kind == "end") == [
        "End",
        "End 2",
    ]


def test_holdout_label_limit_counts_only_what_the_author_wrote(tmp_path: Path) -> None:
    label = "Control group that receives nothing at all during the test"  # 58
    result = compile_one(
        tmp_path,
        HEADER
        + f"""
steps:
  - type: ab_split
    label: Test
    variants: [{{label: A, weight: 90}}]
    holdout: {{label: {label} and after, weight: 10, measure_for: 14 days}}
  - type: end
""",
    )
    error = only(result.diagnostics, "label-too-long")
    assert "shorten it to at most 63 characters" in error.hint  # ": measure 14 days" is 17


def test_counted_goto_needs_a_label(tmp_path: Path) -> None:
    error = single_error(
        tmp_path,
        """
steps:
  - {id: pause, type: wait, label: Pause, for: 1 day}
  - {type: goto, step: pause, max_times: 2}
  - type: end
""",
        "value_error",
    )
    assert "give it a label" in error.message


@pytest.mark.parametrize(
    "setting",
    ["re_entry: {after: -1 day}", "frequency_cap: {max: 1, per: 0 s}"],
)
def test_periods_must_be_positive(tmp_path: Path, setting: str) -> None:
    result = compile_one(
        tmp_path,
        HEADER.replace("settings: {time_zone: Europe/Paris}", f"settings: {{{setting}}}")
        + "steps:\n  - type: end\n",
    )
    assert any("must be longer than zero" in d.message for d in result.diagnostics)


def test_waits_in_a_row_must_fit_in_a_year(tmp_path: Path) -> None:
    error = single_error(
        tmp_path,
        """
steps:
  - {type: wait, label: Hibernate, for: 200 days}
  - {type: wait_for_event, label: "Came back?", event: login, timeout: 100 days}
  - {type: wait, label: Hibernate again, for: 200 days}
  - type: end
""",
        "journey-too-long",
    )
    assert error.step == "Hibernate again"
    assert "500 days" in error.message


def test_event_dates_need_an_event_trigger(tmp_path: Path) -> None:
    result = compile_one(
        tmp_path,
        """
id: demo
name: Demo
trigger: {tag_added: vip}
steps:
  - {type: wait_until, label: Day before, event_property: starts_at, offset: -1 day}
  - type: end
""",
    )
    error = only(result.diagnostics, "no-trigger-event")
    assert error.line == 5


def test_template_syntax_errors_point_at_their_line(tmp_path: Path) -> None:
    templates = {
        "broken": """
        channel: email
        subject: "Hi {{ contact.first_name }"
        html: |
          <p>Hello</p>
          <p>{% if x %}</p>
          <a href="{{ links.unsubscribe }}">Unsubscribe</a>
        text: Hi
        """
    }
    diagnostics = errors_of(
        tmp_path,
        """
steps:
  - {type: send_email, label: Hello, template: broken}
  - type: end
""",
        templates=templates,
    )
    lines = sorted(d.line for d in diagnostics if "template syntax error" in d.message)
    assert lines[0] == 3  # the subject line itself


@pytest.mark.parametrize(
    ("yaml_line", "line", "column", "fragment"),
    [
        ("trigger: {evnt: signed_up}", 3, 1, 'Did you mean "event"?'),
        ("trigger: {event: a, where: {url: {like: /pricing}}}", 3, 35, 'unknown field "like"'),
        (
            "trigger: {event: a}\nsettings: {re_entry: sometimes}",
            4,
            12,
            '"sometimes" is not allowed for "re_entry"',
        ),
    ],
)
def test_one_mistake_in_a_union_gives_one_error(
    tmp_path: Path, yaml_line: str, line: int, column: int, fragment: str
) -> None:
    # GIVEN a mistake inside a field that accepts several shapes (one trigger or a list,
    # a value or a comparison, a word or a mapping)
    result = compile_one(tmp_path, f"id: demo\nname: Demo\n{yaml_line}\nsteps: [{{type: end}}]\n")
    # THEN only the shape the author wrote is explained, where it was written
    assert len(result.diagnostics) == 1, [d.format() for d in result.diagnostics]
    error = result.diagnostics[0]
    assert fragment in error.message
    assert (error.line, error.column) == (line, column)


def test_identifier_rules_are_explained_in_words(tmp_path: Path) -> None:
    error = single_error(
        tmp_path,
        """
steps:
  - {id: Send Reminder, type: end}
""",
        "string_pattern_mismatch",
    )
    assert "step ids are lowercase letters" in error.hint


def test_long_goal_label_is_measured_by_its_watch_state(tmp_path: Path) -> None:
    label = "A goal label that is much too long for a state name once the watch prefix is on it"
    result = compile_one(
        tmp_path, HEADER + f"goal: {{label: {label}, event: a}}\nsteps: [{{type: end}}]\n"
    )
    error = only(result.diagnostics, "label-too-long")
    assert "shorten it to at most 69 characters" in error.hint  # "Watch for: " takes 11


def test_re_entry_hint_shows_every_form(tmp_path: Path) -> None:
    result = compile_one(
        tmp_path,
        "id: demo\nname: Demo\ntrigger: {event: a}\n"
        "settings: {re_entry: sometimes}\nsteps: [{type: end}]\n",
    )
    assert "{after: 30 days}" in result.diagnostics[0].hint


def test_repeat_pause_counts_toward_the_year(tmp_path: Path) -> None:
    error = single_error(
        tmp_path,
        """
steps:
  - {type: wait, label: Long pause, for: 300 days}
  - {type: repeat, after: 100 days}
""",
        "journey-too-long",
    )
    assert "400 days" in error.message


def test_webhook_keys_cannot_look_like_json_paths(tmp_path: Path) -> None:
    error = single_error(
        tmp_path,
        """
steps:
  - type: webhook
    label: Tell the CRM
    url: https://crm.example.com/hook
    body: {contact: {id.$: "$.contact_id"}}
  - type: end
""",
        "value_error",
    )
    assert 'key "id.$" ends in ".$"' in error.message
