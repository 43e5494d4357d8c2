"""Segments without AWS: the rule language and its teaching errors, the checks between
segments and workflows, evaluation of every rule kind at a fixed time, and the index."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from journeys import router, segments
from journeys.compiler import models as m
from journeys.compiler.pipeline import compile_paths, compile_text, render_index, workflow_index
from journeys.compiler.segments import (
    EVENTS_KEPT_SECONDS,
    SegmentLibrary,
    SegmentSet,
    index_entry,
    segment_set_from_index,
)
from journeys.compiler.validate import TemplateIndex
from journeys.conditions import EventRecord
from journeys.contacts import ChannelState, ContactView
from journeys.segments import Changes, SegmentFacts
from tests.helpers.workflows import write_workflow

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
REFERENCE_SEGMENTS = {"about-to-churn", "d-30", "d-60", "d-90", "engaged", "repeat-browser"}


def library(tmp_path: Path, **files: str) -> SegmentLibrary:
    directory = tmp_path / "segments"
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / f"{name}.yaml").write_text(textwrap.dedent(text).lstrip("\n"))
    loaded = SegmentLibrary.load(directory)
    assert loaded is not None
    return loaded


def problems(loaded: SegmentLibrary) -> list[str]:
    return [d.format() for found in loaded.problems.values() for d in found]


# --- The language and its errors -----------------------------------------------------------


def test_the_reference_segments_are_valid() -> None:
    loaded = SegmentLibrary.load(ROOT / "workflows" / "segments")
    assert loaded is not None
    assert problems(loaded) == []
    assert set(loaded.segments) == REFERENCE_SEGMENTS
    assert loaded.segments["d-30"].rule == m.InactiveRule.model_validate(
        {"inactive_for": "30 days"}
    )
    drop = loaded.segments["about-to-churn"].rule
    assert isinstance(drop, m.ActivityDroppedRule)
    assert (drop.activity_dropped.event, drop.activity_dropped.by) == ("logged_in", 50)


def test_a_rule_without_a_kind_suggests_one(tmp_path: Path) -> None:
    loaded = library(
        tmp_path,
        browsers="""
        id: browsers
        rule:
          any:
            - {evnt: product_viewed}
        """,
    )
    [problem] = problems(loaded)
    assert problem == (
        f"{tmp_path}/segments/browsers.yaml:4:7: error: this rule has none of the keys that "
        'say what it tests. Did you mean "event"?\n'
        "    hint: a rule starts with one of: attribute, tag, segment, event, reachable, "
        "inactive_for, activity_dropped, all, any, not"
    )


@pytest.mark.parametrize(
    ("condition", "instead"),
    [
        ("{opened: welcome}", "{event: email_opened, within: 30 days}"),
        ("{clicked: welcome}", "{event: email_clicked, within: 30 days}"),
        ("{started_by: signed_up}", "{event: signed_up, within: 7 days}"),
    ],
)
def test_journey_only_conditions_are_refused_with_what_to_write(
    tmp_path: Path, condition: str, instead: str
) -> None:
    loaded = library(
        tmp_path,
        fans=f"""
        id: fans
        rule:
          all:
            - {{tag: vip}}
            - {condition}
        """,
    )
    [problem] = problems(loaded)
    assert problem.startswith(f"{tmp_path}/segments/fans.yaml:5:7: error: ")
    assert "a segment is not inside a journey" in problem
    assert instead in problem


def test_activity_dropped_fields_are_checked(tmp_path: Path) -> None:
    loaded = library(
        tmp_path,
        churn="""
        id: churn
        rule:
          activity_dropped: {event: logged_in, period: 15 days, by: 150%, wher: {}}
        """,
    )
    assert problems(loaded) == [
        f'{tmp_path}/segments/churn.yaml:3:57: error: "by" must be between 1% and 100% '
        "(got '150%')",
        f'{tmp_path}/segments/churn.yaml:3:67: error: unknown field "wher". '
        'Did you mean "where"?\n    hint: fields allowed here: by, event, period, where',
    ]


@pytest.mark.parametrize(("by", "percent"), [("50%", 50), ("25 %", 25), (100, 100), ('"1%"', 1)])
def test_percentages(tmp_path: Path, by: Any, percent: int) -> None:
    loaded = library(
        tmp_path,
        churn=f"""
        id: churn
        rule: {{activity_dropped: {{event: logged_in, period: 15 days, by: {by}}}}}
        """,
    )
    rule = loaded.segments["churn"].rule
    assert isinstance(rule, m.ActivityDroppedRule) and rule.activity_dropped.by == percent


def test_inactive_for_needs_a_duration(tmp_path: Path) -> None:
    loaded = library(
        tmp_path,
        idle="""
        id: idle
        rule: {inactive_for: 30}
        """,
    )
    [problem] = problems(loaded)
    assert ":2:8: error: expected a duration such as" in problem


def test_the_id_matches_the_file_and_follows_the_pattern(tmp_path: Path) -> None:
    loaded = library(
        tmp_path,
        d30="id: d-30\nrule: {inactive_for: 30 days}\n",
        Loud="id: Loud\nrule: {tag: loud}\n",
    )
    assert problems(loaded) == [
        f'{tmp_path}/segments/Loud.yaml:1:1: error: "Loud" is not a valid value for "id"\n'
        '    hint: segment ids are lowercase letters, digits and "-" (e.g. repeat-browser, '
        "d-30), and match the file name",
        f'{tmp_path}/segments/d30.yaml:1:1: error: id "d-30" differs from the file name "d30"\n'
        "    hint: rename the file to d-30.yaml or set id: d30",
    ]


def test_an_empty_or_broken_file_says_so(tmp_path: Path) -> None:
    loaded = library(tmp_path, empty="", broken="id: x\nrule: {tag: [\n")
    found = problems(loaded)
    assert found[0].startswith(f"{tmp_path}/segments/broken.yaml:")
    assert "this is not valid YAML" in found[0]
    assert found[1].startswith(
        f"{tmp_path}/segments/empty.yaml:1:1: error: the segment file is empty"
    )


def test_a_rule_may_only_name_defined_segments(tmp_path: Path) -> None:
    loaded = library(
        tmp_path,
        loyal="""
        id: loyal
        rule:
          all:
            - {segment: engagd}
        """,
        engaged="id: engaged\nrule: {attribute: score, gte: 50}\n",
    )
    assert problems(loaded) == [
        f'{tmp_path}/segments/loyal.yaml:4:8: error: there is no segment "engagd". '
        'Did you mean "engaged"?\n'
        f"    hint: segments are the files in {tmp_path}/segments/ (defined: engaged, loyal)"
    ]


def test_segments_cannot_contain_themselves(tmp_path: Path) -> None:
    loaded = library(
        tmp_path,
        a="id: a\nrule: {any: [{tag: x}, {segment: b}]}\n",
        b="id: b\nrule: {not: {segment: a}}\n",
        c="id: c\nrule: {segment: c}\n",
        d="id: d\nrule: {segment: a}\n",  # depends on the loop, is not in it
    )
    assert problems(loaded) == [
        f'{tmp_path}/segments/a.yaml:2:25: error: segment "a" contains itself: a -> b -> a\n'
        "    hint: a segment cannot depend on itself, directly or through other segments: "
        "its membership could never be decided; write the rule out instead",
        f'{tmp_path}/segments/b.yaml:2:14: error: segment "b" contains itself: b -> a -> b\n'
        "    hint: a segment cannot depend on itself, directly or through other segments: "
        "its membership could never be decided; write the rule out instead",
        f'{tmp_path}/segments/c.yaml:2:8: error: segment "c" contains itself: c -> c\n'
        "    hint: a segment cannot depend on itself, directly or through other segments: "
        "its membership could never be decided; write the rule out instead",
    ]
    assert set(loaded.segments) == {"d"}


# --- Workflows naming segments -------------------------------------------------------------

WORKFLOW = """
id: demo
name: Demo
trigger:
  - segment_entered: d-31
  - event: signed_up
goal: {label: Converted, segment: buyers}
exit:
  - {label: Left, segment: lapsed}
steps:
  - type: decision
    label: Engaged?
    condition: {any: [{tag: vip}, {segment: engagd}]}
    yes:
      - type: end
        label: Engaged
  - type: end
    label: Not engaged
"""


def test_a_workflow_naming_an_undefined_segment_is_told_which_exist(tmp_path: Path) -> None:
    write_workflow(tmp_path, WORKFLOW)
    library(
        tmp_path,
        **{"d-30": "id: d-30\nrule: {inactive_for: 30 days}\n"},
        engaged="id: engaged\nrule: {tag: engaged}\n",
    )
    (result,) = compile_paths([tmp_path])
    hint = f"    hint: segments are the files in {tmp_path}/segments/ (defined: d-30, engaged)"
    assert [d.format() for d in result.diagnostics] == [
        f'{tmp_path}/demo.yaml:4:5: error: there is no segment "d-31". Did you mean "d-30"?\n'
        + hint,
        f'{tmp_path}/demo.yaml:6:26: error: there is no segment "buyers".\n' + hint,
        f'{tmp_path}/demo.yaml:8:19: error: there is no segment "lapsed".\n' + hint,
        f'{tmp_path}/demo.yaml:12:36: error [Engaged?]: there is no segment "engagd". '
        'Did you mean "engaged"?\n' + hint,
    ]


def test_without_a_segments_directory_any_segment_may_be_named(tmp_path: Path) -> None:
    text = textwrap.dedent(WORKFLOW).lstrip("\n")
    result = compile_text(text, "demo.yaml", TemplateIndex(tmp_path / "templates"))
    assert result.ok, [d.format() for d in result.diagnostics]
    write_workflow(tmp_path, WORKFLOW)
    (result,) = compile_paths([tmp_path / "demo.yaml"])
    assert result.ok and result.segments is None


def test_segment_files_are_not_workflows_and_report_their_own_problems(tmp_path: Path) -> None:
    text = WORKFLOW.replace("d-31", "d-30").replace("segment: engagd", "tag: x")
    write_workflow(tmp_path, text.replace("buyers", "d-30").replace("lapsed", "d-30"))
    library(tmp_path, **{"d-30": "id: d-30\nrule: {inactive_for: 0 days}\n"})
    results = compile_paths([tmp_path])
    assert [r.file for r in results] == [f"{tmp_path}/demo.yaml", f"{tmp_path}/segments/d-30.yaml"]
    assert results[0].ok and results[0].workflow is not None
    assert [d.format() for d in results[1].diagnostics] == [
        f'{tmp_path}/segments/d-30.yaml:2:8: error: "inactive_for" must be longer than zero '
        '(got "0 days")'
    ]


# --- Evaluation ----------------------------------------------------------------------------


def segment_set(**rules: Any) -> SegmentSet:
    return SegmentSet.of(
        m.Segment.model_validate({"id": name.replace("_", "-"), "rule": rule})
        for name, rule in rules.items()
    )


def facts(
    events: list[tuple[str, timedelta, dict[str, Any]]] | None = None,
    active_ago: timedelta | None = None,
    **contact: Any,
) -> SegmentFacts:
    return SegmentFacts(
        contact=ContactView(contact_id="c-1", **contact),
        events=[EventRecord(name, NOW - ago, props) for name, ago, props in events or []],
        active_since=NOW - active_ago if active_ago is not None else None,
        now=NOW,
    )


def members(rules: SegmentSet, given: SegmentFacts) -> set[str]:
    return set(segments.memberships(rules, given))


def test_attribute_tag_and_reachable_rules() -> None:
    rules = segment_set(
        engaged={"attribute": "score", "gte": 50},
        vip={"tag": "vip"},
        pushable={"reachable": "push"},
    )
    assert members(rules, facts()) == set()
    everything = facts(
        attributes={"score": 50},
        tags={"vip": "2026-01-01"},
        channels={"push": ChannelState("token-1")},
    )
    assert members(rules, everything) == {"engaged", "vip", "pushable"}
    unsubscribed = facts(channels={"push": ChannelState("token-1", "unsubscribed")})
    assert members(rules, unsubscribed) == set()


def test_event_rules_count_within_the_window_and_filter() -> None:
    rules = segment_set(
        repeat_browser={
            "event": "product_viewed",
            "within": "30 days",
            "at_least": 4,
            "where": {"price": {"gt": 10}},
        }
    )
    view = ("product_viewed", DAY, {"price": 20})
    assert members(rules, facts([view] * 3)) == set()
    assert members(rules, facts([view] * 4)) == {"repeat-browser"}
    cheap = ("product_viewed", DAY, {"price": 5})
    assert members(rules, facts([view] * 3 + [cheap])) == set()
    old = ("product_viewed", 31 * DAY, {"price": 20})
    assert members(rules, facts([view] * 3 + [old])) == set()
    at_the_edge = ("product_viewed", 30 * DAY, {"price": 20})  # windows are inclusive
    assert members(rules, facts([view] * 3 + [at_the_edge])) == {"repeat-browser"}


@pytest.mark.parametrize(
    ("active_ago", "inside"),
    [
        (None, False),  # no activity and no creation known: never inactive
        (DAY, False),
        (30 * DAY - timedelta(seconds=1), False),
        (30 * DAY, True),
        (400 * DAY, True),
    ],
)
def test_inactive_for(active_ago: timedelta | None, inside: bool) -> None:
    rules = segment_set(d_30={"inactive_for": "30 days"})
    assert members(rules, facts(active_ago=active_ago)) == ({"d-30"} if inside else set())


def test_activity_basis_is_the_last_activity_else_the_creation() -> None:
    assert segments.activity_basis("2026-11-01T00:00:00.000000Z", "2020-01-01T00:00:00Z") == (
        datetime(2026, 11, 1, tzinfo=UTC)
    )
    assert segments.activity_basis(None, "2020-01-01T00:00:00Z") == datetime(2020, 1, 1, tzinfo=UTC)
    assert segments.activity_basis(None, None) is None
    assert segments.activity_basis("garbage", None) is None


def logins(*days_ago: float) -> list[tuple[str, timedelta, dict[str, Any]]]:
    return [("logged_in", timedelta(days=ago), {}) for ago in days_ago]


@pytest.mark.parametrize(
    ("history", "dropped"),
    [
        (logins(), False),  # nothing before: nothing dropped
        (logins(1, 2, 3), False),  # only recent logins
        (logins(20), True),  # one before, none since: dropped 100%
        (logins(1, 20, 25), True),  # 1 recent vs 2 before: exactly 50%
        (logins(1, 2, 20, 25, 28), False),  # 2 vs 3: only 33%
        (logins(1, 20, 25, 28, 31), True),  # the login 31 days ago is outside both periods
        (logins(15, 16), True),  # 15 days ago exactly belongs to the period before
    ],
)
def test_activity_dropped(history: list[Any], dropped: bool) -> None:
    rules = segment_set(
        about_to_churn={
            "activity_dropped": {"event": "logged_in", "period": "15 days", "by": "50%"}
        }
    )
    other = [("page_viewed", DAY, {})] * 5  # other events do not count
    assert members(rules, facts(history + other)) == ({"about-to-churn"} if dropped else set())


def test_activity_dropped_filters_on_properties() -> None:
    rules = segment_set(
        mobile_churn={
            "activity_dropped": {
                "event": "logged_in",
                "period": "15 days",
                "by": "100%",
                "where": {"app": "ios"},
            }
        }
    )
    ios, web = {"app": "ios"}, {"app": "web"}
    history = [("logged_in", 20 * DAY, ios), ("logged_in", DAY, web)]
    assert members(rules, facts(history)) == {"mobile-churn"}
    assert members(rules, facts([*history, ("logged_in", DAY, ios)])) == set()


def test_segments_of_segments_all_any_not() -> None:
    rules = segment_set(
        # Listed before the segments it names: evaluation orders them.
        quiet_vip={"all": [{"segment": "vip"}, {"not": {"segment": "active"}}]},
        vip={"any": [{"tag": "vip"}, {"attribute": "plan", "equals": "gold"}]},
        active={"event": "logged_in", "within": "7 days"},
    )
    assert [s.id for s in rules.ordered] == ["active", "vip", "quiet-vip"]
    assert members(rules, facts(tags={"vip": "x"})) == {"vip", "quiet-vip"}
    assert members(rules, facts(logins(1), attributes={"plan": "gold"})) == {"vip", "active"}
    # A segment no definition names is read from the contact's stored map.
    outside = segment_set(imported_fan={"segment": "imported"})
    assert members(outside, facts(segments={"imported": "2026-01-01"})) == {"imported-fan"}


def test_changes_touch_only_defined_segments() -> None:
    rules = segment_set(a={"tag": "a"}, b={"tag": "b"}, c={"tag": "c"})
    stored = {"b": "2026-01-01", "c": "2026-01-01", "imported": "2026-01-01"}
    found = segments.changes(rules, stored, frozenset({"a", "c"}))
    assert found == Changes(entered=("a",), exited=("b",))
    assert found.describe() == "+a,-b"
    assert not segments.changes(rules, {"a": "x"}, frozenset({"a"}))


def test_announcement_ids_and_bodies() -> None:
    found = Changes(entered=("d-30", "d-60"), exited=("engaged",))
    assert segments.message_announcement_id("evt-1", found) == "seg:evt-1:+d-30,+d-60,-engaged"
    assert (
        segments.sweep_announcement_id("c-1", NOW + timedelta(seconds=42), found)
        == "seg-sweep:c-1:2026-11-22T12:00Z:+d-30,+d-60,-engaged"
    )
    long = segments.message_announcement_id("e" * 512, found)
    assert long.startswith("seg:") and len(long) <= segments.EVENT_ID_MAX
    assert long != segments.message_announcement_id("f" * 512, found)
    body = json.loads(segments.announcement_body("c-1", "seg:x", found, NOW))
    message = router.parse_message(body)
    assert isinstance(message, router.ContactChangedMessage)
    assert (message.segments_entered, message.segments_exited) == (["d-30", "d-60"], ["engaged"])


# --- What evaluation loads, and the index --------------------------------------------------


def test_what_a_segment_set_needs_to_load() -> None:
    assert segment_set(vip={"tag": "vip"}).event_names == frozenset()
    assert segment_set(vip={"tag": "vip"}).lookback_seconds == 0
    rules = segment_set(
        browsers={"event": "product_viewed", "within": "30 days"},
        churn={"activity_dropped": {"event": "logged_in", "period": "20 days", "by": "50%"}},
    )
    assert rules.event_names == {"product_viewed", "logged_in"}
    assert rules.lookback_seconds == 40 * 86400
    ever = segment_set(buyers={"not": {"event": "purchased"}})
    assert ever.lookback_seconds == EVENTS_KEPT_SECONDS == router.EVENT_TTL_SECONDS


def test_a_cycle_in_the_index_is_refused() -> None:
    with pytest.raises(ValueError, match="contains itself"):
        segment_set(a={"segment": "b"}, b={"segment": "a"})
    with pytest.raises(router.WorkflowIndexError, match="contains itself"):
        router.parse_index({"workflows": {}, "segments": {"a": {"rule": {"segment": "a"}}}})
    with pytest.raises(router.WorkflowIndexError, match="segment 'x' in the index"):
        router.parse_index({"workflows": {}, "segments": {"x": {"rule": {"opened": "y"}}}})


def test_the_compiled_index_carries_every_segment() -> None:
    data = json.loads((ROOT / "state_machines" / "index.json").read_text())
    assert set(data["segments"]) == REFERENCE_SEGMENTS
    assert data["segments"]["repeat-browser"] == {
        "description": "Viewed a product page more than 3 times in the last 30 days.",
        "rule": {"at_least": 4, "event": "product_viewed", "within": "30 days"},
    }
    assert data["segments"]["about-to-churn"]["rule"] == {
        "activity_dropped": {"by": "50%", "event": "logged_in", "period": "15 days"}
    }
    index = router.load_index(ROOT / "state_machines" / "index.json")
    assert index.segments.ids == REFERENCE_SEGMENTS
    assert index.segments.lookback_seconds == 30 * 86400


def test_index_entries_round_trip_and_render_deterministically() -> None:
    results = compile_paths([ROOT / "workflows"])
    assert render_index(results) == render_index(list(reversed(results)))
    raw = workflow_index(results)["segments"]
    again = segment_set_from_index(json.loads(json.dumps(raw)))
    loaded = SegmentLibrary.load(ROOT / "workflows" / "segments")
    assert loaded is not None
    assert {s.id: s for s in again.ordered} == loaded.segments
    assert all(index_entry(loaded.segments[s]) == raw[s] for s in raw)


def test_an_index_without_segments_still_loads() -> None:
    index = router.parse_index({"workflows": {}})
    assert not index.segments and index.segments.ids == frozenset()
