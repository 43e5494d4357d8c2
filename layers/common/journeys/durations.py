"""Human durations ("2h", "30 min", "7 days", "1 week 2 days") to seconds and back."""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS: dict[str, int] = {
    "s": 1,
    "sec": 1,
    "secs": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 7 * 86400,
    "week": 7 * 86400,
    "weeks": 7 * 86400,
    # Months are 30 days: a Wait state needs an exact number of seconds.
    "mo": 30 * 86400,
    "month": 30 * 86400,
    "months": 30 * 86400,
    "y": 365 * 86400,
    "year": 365 * 86400,
    "years": 365 * 86400,
}
_PART = re.compile(r"\s*(\d+)\s*([a-z]+)\s*", re.IGNORECASE)

DURATION_PATTERN = r"^\s*-?\s*(\d+\s*[A-Za-z]+\s*)+$"
DURATION_HELP = (
    'write a number and a unit, e.g. "90s", "30 min", "2h", "3 days", "2 weeks", '
    '"1 month" (30 days); parts may be combined: "1 day 12 h"'
)

ONE_YEAR = 365 * 86400


@dataclass(frozen=True, slots=True)
class Duration:
    """A duration as the author wrote it, and its exact length in seconds (may be negative)."""

    text: str
    seconds: int

    def __str__(self) -> str:
        return self.text


def parse_duration(text: str) -> Duration:
    """Parse a human duration; raise ValueError with a teaching message otherwise."""
    if not isinstance(text, str):
        raise ValueError(f'expected a duration such as "2h", got {text!r}; {DURATION_HELP}')
    raw = text.strip()
    sign = 1
    if raw.startswith("-"):
        sign, raw = -1, raw[1:]
    if not raw:
        raise ValueError(f"empty duration; {DURATION_HELP}")
    total, pos = 0, 0
    while pos < len(raw):
        match = _PART.match(raw, pos)
        if not match:
            raise ValueError(f"cannot read duration {text!r}; {DURATION_HELP}")
        number, unit = int(match.group(1)), match.group(2).lower()
        if unit not in _UNITS:
            raise ValueError(f"unknown time unit {unit!r} in {text!r}; {DURATION_HELP}")
        total += number * _UNITS[unit]
        pos = match.end()
    return Duration(text=text.strip(), seconds=sign * total)


def describe_seconds(seconds: int) -> str:
    """Shortest readable form: 7200 -> "2 h", 90000 -> "1 day 1 h"."""
    if seconds == 0:
        return "0 s"
    sign = "-" if seconds < 0 else ""
    rest = abs(seconds)
    parts: list[str] = []
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            label = unit + ("s" if unit == "day" and count > 1 else "")
            parts.append(f"{count} {label}")
    return sign + " ".join(parts)
