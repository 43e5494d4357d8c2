"""The local stack's pure parts: time, schedules, event patterns, moto adaptations."""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from journeys import clock
from journeys.local import engine
from journeys.local.cli import parse_speed
from journeys.local.outbox import _email_content
from journeys.local.sandbox import HttpSandbox
from journeys.local.stack import event_pattern_matches, rate_seconds

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def test_a_scaled_clock_runs_faster_and_can_change_speed_without_going_back() -> None:
    scaled = clock.ScaledClock(3600, START)
    time.sleep(0.05)
    moved = (scaled.now() - START).total_seconds()
    assert 150 <= moved <= 1800  # 0.05 s real is 3 min of journey time (with slack)
    before = scaled.now()
    scaled.set_scale(1)
    assert scaled.now() >= before
    scaled.advance(86400)
    assert (scaled.now() - before).total_seconds() >= 86400
    assert scaled.real_seconds(7200) == 7200


def test_a_scale_must_be_positive() -> None:
    with pytest.raises(ValueError, match="greater than zero"):
        clock.ScaledClock(0)
    with pytest.raises(ValueError, match="only moves forward"):
        clock.ScaledClock(1).advance(-1)


def test_the_installed_clock_is_what_services_read() -> None:
    previous = clock.install(clock.ScaledClock(1, START))
    try:
        assert abs((clock.now() - START).total_seconds()) < 5
    finally:
        clock.install(previous)
    assert abs((clock.now() - datetime.now(UTC)).total_seconds()) < 5


@pytest.mark.parametrize(
    ("text", "scale"),
    [("1h", 3600), ("1 day", 86400), ("3600", 3600), ("1", 1), ("30min", 1800), ("2w", 1209600)],
)
def test_speeds_read_as_journey_time_per_second(text: str, scale: float) -> None:
    assert parse_speed(text) == scale


@pytest.mark.parametrize("text", ["fast", "1 fortnight", "0", "-1h"])
def test_a_bad_speed_says_what_to_write(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"speed"):
        parse_speed(text)


def test_rate_expressions() -> None:
    assert rate_seconds("rate(1 hour)") == 3600
    assert rate_seconds("rate(5 minutes)") == 300
    with pytest.raises(ValueError, match="rate"):
        rate_seconds("cron(0 * * * ? *)")


def test_event_patterns_match_as_eventbridge_does() -> None:
    pattern = {
        "source": ["aws.states"],
        "detail": {"status": ["SUCCEEDED", "FAILED"], "stateMachineArn": [{"prefix": "arn:a:"}]},
    }
    event = {"source": "aws.states", "detail": {"status": "FAILED", "stateMachineArn": "arn:a:m"}}
    assert event_pattern_matches(pattern, event)
    assert not event_pattern_matches(pattern, {**event, "source": "aws.events"})
    assert not event_pattern_matches(
        pattern, {**event, "detail": {"status": "RUNNING", "stateMachineArn": "arn:a:m"}}
    )
    assert not event_pattern_matches(
        pattern, {**event, "detail": {"status": "FAILED", "stateMachineArn": "arn:b:m"}}
    )


def test_a_distributed_map_is_rewritten_to_what_motos_parser_accepts() -> None:
    definition = {
        "StartAt": "Rows",
        "States": {
            "Rows": {
                "Type": "Map",
                "ItemBatcher": {"MaxItemsPerBatch": 100, "BatchInput": {"id.$": "$.id"}},
                "ToleratedFailurePercentage": 5,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                    "StartAt": "T",
                    "States": {"T": {"Type": "Pass", "End": True}},
                },
                "End": True,
            }
        },
    }
    runnable = engine.runnable_on_moto(definition)
    rows = runnable["States"]["Rows"]
    assert "ItemBatcher" not in rows
    assert rows["ItemSelector"] == {
        "Items.$": "States.Array($$.Map.Item.Value)",
        "BatchInput": {"id.$": "$.id"},
    }
    assert rows["ItemProcessor"]["ProcessorConfig"]["ExecutionType"] == "STANDARD"
    assert rows["ToleratedFailurePercentage"] == 5.0
    assert "ItemBatcher" in definition["States"]["Rows"]  # the template is left alone


def test_the_engine_patches_moto_and_restores_it() -> None:
    from moto.awslambda.models import LambdaFunction
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
        WaitFunction,
    )

    originals = (LambdaFunction._invoke_lambda, WaitFunction._eval_body)
    engine.install(lambda name, event: ({"ran": name}, False))
    try:
        assert engine.installed()
        assert LambdaFunction._invoke_lambda is not originals[0]
        assert WaitFunction._eval_body is not originals[1]
        with pytest.raises(RuntimeError, match="already installed"):
            engine.install(lambda name, event: ({}, False))
    finally:
        engine.uninstall()
    assert (LambdaFunction._invoke_lambda, WaitFunction._eval_body) == originals
    assert not engine.installed()


def test_the_sandbox_answers_from_sample_files_and_never_leaves_its_folder() -> None:
    sandbox = HttpSandbox(ROOT / "demo" / "http")
    try:
        similar = sandbox.answer_for("/recommendations.example.com/similar")
        assert isinstance(similar, dict) and similar["products"]
        assert sandbox.answer_for("/unknown.example.com/hook") == {}
        assert sandbox.answer_for("/../../pyproject") == {}
    finally:
        sandbox._server.server_close()


def test_an_email_in_the_outbox_shows_recipient_subject_and_text() -> None:
    raw = (
        "From: shop@example.com\r\nTo: ana@example.com\r\nSubject: Your cart\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nStill there?\r\n"
    )
    assert _email_content(raw, ["ana@example.com"]) == (
        "ana@example.com",
        "Your cart",
        "Still there?",
    )
