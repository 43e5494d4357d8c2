"""The `journeys` command as a user runs it: exit codes, messages, files written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from journeys.cli import main
from tests.helpers.workflows import write_workflow

GOOD = """
id: demo
name: Demo
trigger: {event: signed_up}
steps:
  - {type: send_email, label: Say hello, template: hello}
  - type: end
"""
BAD = """
id: demo
name: Demo
trigger: {event: signed_up}
steps:
  - {type: send_emial, label: Say hello, template: hello}
"""


def test_validate_reports_every_error_with_location_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_workflow(tmp_path, BAD)
    assert main(["validate", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:5:6: error [Say hello]: unknown step type" in err
    assert 'Did you mean "send_email"?' in err
    assert "✗ 1 error(s)" in err


def test_validate_passes_and_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_workflow(tmp_path, GOOD)
    assert main(["validate", str(tmp_path)]) == 0
    assert "✓ 1 workflow(s) valid" in capsys.readouterr().out


def test_missing_path_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["validate", str(tmp_path / "nope")])
    assert stopped.value.code == 2
    assert "no such file or directory" in capsys.readouterr().err


def test_compile_writes_deterministic_files_and_check_detects_drift(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_workflow(tmp_path / "wf", GOOD)
    out = tmp_path / "out"
    assert main(["compile", str(tmp_path / "wf"), "--out", str(out)]) == 0
    first = (out / "demo.asl.json").read_text()
    assert json.loads(first)["StartAt"] == "Demo"
    assert main(["compile", str(tmp_path / "wf"), "--out", str(out)]) == 0
    assert (out / "demo.asl.json").read_text() == first
    assert "0 changed" in capsys.readouterr().out
    assert main(["compile", str(tmp_path / "wf"), "--out", str(out), "--check"]) == 0

    (out / "demo.asl.json").write_text(first.replace("Say hello", "Say hi"))
    (out / "gone.asl.json").write_text("{}")
    assert main(["compile", str(tmp_path / "wf"), "--out", str(out), "--check"]) == 1
    err = capsys.readouterr().err
    assert "demo.asl.json differs from its workflow" in err
    assert "gone.asl.json has no workflow" in err


def test_compile_writes_nothing_when_any_workflow_is_broken(tmp_path: Path) -> None:
    write_workflow(tmp_path / "wf", GOOD)
    write_workflow(tmp_path / "wf", BAD.replace("id: demo", "id: broken"), name="broken")
    out = tmp_path / "out"
    assert main(["compile", str(tmp_path / "wf"), "--out", str(out)]) == 1
    assert not out.exists() or not list(out.iterdir())


def test_compile_prunes_machines_of_deleted_workflows(tmp_path: Path) -> None:
    write_workflow(tmp_path / "wf", GOOD)
    out = tmp_path / "out"
    out.mkdir()
    (out / "deleted.asl.json").write_text("{}")
    (out / "deleted.view.json").write_text("{}")
    assert main(["compile", str(tmp_path / "wf"), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "demo.asl.json",
        "demo.view.json",
        "index.json",
        "template.json",
    ]


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("validate", "compile", "graph", "schema"):
        with pytest.raises(SystemExit) as stopped:
            main([command, "--help"])
        assert stopped.value.code == 0
        assert "examples:" in capsys.readouterr().out


def test_segments_beside_the_workflows_are_checked_and_compiled_into_the_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_workflow(tmp_path / "wf", GOOD.replace("{event: signed_up}", "{segment_entered: d-30}"))
    segments = tmp_path / "wf" / "segments"
    segments.mkdir()
    (segments / "d-30.yaml").write_text("id: d-30\nrule: {inactive_fr: 30 days}\n")
    out = tmp_path / "out"
    assert main(["validate", str(tmp_path / "wf")]) == 1
    err = capsys.readouterr().err
    assert f"{segments}/d-30.yaml:2:1: error: this rule has none of the keys" in err
    assert 'Did you mean "inactive_for"?' in err
    assert main(["compile", str(tmp_path / "wf"), "--out", str(out)]) == 1

    (segments / "d-30.yaml").write_text("id: d-30\nrule: {inactive_for: 30 days}\n")
    assert main(["validate", str(tmp_path / "wf")]) == 0
    assert "✓ 1 workflow(s) valid" in capsys.readouterr().out
    assert main(["compile", str(tmp_path / "wf"), "--out", str(out)]) == 0
    index = json.loads((out / "index.json").read_text())
    assert index["segments"] == {"d-30": {"rule": {"inactive_for": "30 days"}}}
    assert main(["compile", str(tmp_path / "wf"), "--out", str(out), "--check"]) == 0
    (segments / "d-30.yaml").write_text("id: d-30\nrule: {inactive_for: 31 days}\n")
    assert main(["compile", str(tmp_path / "wf"), "--out", str(out), "--check"]) == 1
    assert "index.json differs" in capsys.readouterr().err


def test_a_segment_file_named_on_its_own_is_checked_as_a_segment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    segments = tmp_path / "segments"
    segments.mkdir()
    (segments / "fans.yaml").write_text("id: fans\nrule: {clicked: welcome}\n")
    (segments / "vip.yaml").write_text("id: vip\nrule: {tag: vip}\n")
    assert main(["validate", str(segments / "vip.yaml")]) == 0
    assert main(["validate", str(segments)]) == 1
    err = capsys.readouterr().err
    assert f'{segments}/fans.yaml:2:1: error: "clicked" asks about a message' in err
    assert "✗ 1 error(s)" in err
