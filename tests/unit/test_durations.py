from __future__ import annotations

import pytest

from journeys.durations import describe_seconds, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("30 min", 1800),
        ("2h", 7200),
        ("3 days", 259200),
        ("1 week", 604800),
        ("1 month", 2592000),
        ("1 day 12 h", 129600),
        ("-10 days", -864000),
        ("2H", 7200),
    ],
)
def test_parses_human_durations(text: str, seconds: int) -> None:
    assert parse_duration(text).seconds == seconds
    assert parse_duration(text).text == text


@pytest.mark.parametrize("text", ["", "soon", "3", "3 dayz", "h2", "2 h and 3 min"])
def test_rejects_what_it_cannot_read_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match='"2h"'):
        parse_duration(text)


def test_describes_seconds_readably() -> None:
    assert describe_seconds(7200) == "2 h"
    assert describe_seconds(90000) == "1 day 1 h"
    assert describe_seconds(2 * 86400 + 60) == "2 days 1 min"
