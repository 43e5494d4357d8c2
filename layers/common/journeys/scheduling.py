"""When a contact should continue: dates plus offsets, sending windows, quiet hours and date
triggers, in the contact's time zone.

Pure functions for the schedule function and the date-trigger sweep: no AWS, no clock (the
caller passes `now`), no environment. The conventions, so that no caller has to guess:

- Every datetime returned is aware and in UTC. Local wall-clock times are naive datetimes,
  and only `_instant` turns them into instants: the one place DST is resolved.
- A local time skipped by a DST jump (02:30 on a spring-forward night) moves forward by the
  gap (03:30); a local time that happens twice (fall-back) means its first occurrence.
- Whole days move the local calendar, so 09:00 stays 09:00 across a DST change; hours and
  minutes are exact elapsed time ("-2 h" before a webinar is two real hours).
- A value given without an offset ("2026-12-01", "2026-12-01T09:00") is local time in the
  contact's zone; "Z" and explicit offsets are respected.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from journeys.durations import parse_duration

DAY = 86400
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
RECURRENCES = ("yearly", "monthly", "once")

# Units that `journeys.durations` counts as 30 and 365 days, which a date shift means as
# calendar months ("1 month" after Jan 31 is the end of February, not March 2).
_CALENDAR_MONTHS = {"mo": 1, "month": 1, "months": 1, "y": 12, "year": 12, "years": 12}
_PART = re.compile(r"(\d+)\s*([a-z]+)", re.IGNORECASE)
_Day = TypeVar("_Day", bound=date)


def resolve_zone(contact_zone: object, default_zone: object = None) -> ZoneInfo:
    """The contact's zone, else the workflow's default, else UTC. A missing or unknown name
    falls through to the next, so a bad attribute never stops a journey."""
    for name in (contact_zone, default_zone):
        if isinstance(name, str) and name.strip():
            try:
                return ZoneInfo(name.strip())
            except (ZoneInfoNotFoundError, ValueError, OSError):
                continue
    # Deliberately unguarded: without a time-zone database even UTC fails, loudly, instead
    # of every contact silently getting UTC.
    return ZoneInfo("UTC")


def parse_moment(value: object, zone: tzinfo) -> datetime | None:
    """An instant from a date/datetime or an ISO-8601 string (a date alone is local
    midnight); None when the value is missing or unreadable."""
    written = _written(value)
    return None if written is None else _instant(written, zone)


def wait_until_moment(
    value: object, offset_seconds: int, at: str | None, zone: tzinfo, now: datetime
) -> datetime:
    """When a `wait_until` on a date (attribute or event property) ends: the date plus the
    offset, at the local time `at` if given. Due 2026-12-01, -10 days, at 09:00 in
    Europe/Paris: 2026-11-21T08:00Z.

    A missing or unreadable date returns `now`: the contact continues at once rather than
    waiting forever (the decisions after the wait see the missing value). A date in the
    past is returned as is; a Wait on a past timestamp also continues at once.

    With `at`, the day is the calendar day as written, moved by the offset: a birthday
    exported as "1990-05-14T00:00:00Z" stays the 14th for a contact in New York.
    """
    written = _written(value)
    if written is None:
        return _utc(now)
    if at is None:
        return _add(_instant(written, zone), offset_seconds, zone)
    day = (written.replace(tzinfo=None) + timedelta(seconds=offset_seconds)).date()
    return _instant(datetime.combine(day, _clock(at)), zone)


def next_window(
    now: datetime,
    zone: tzinfo,
    days: Iterable[str],
    start: str,
    end: str,
    best_hour: object = None,
) -> datetime:
    """The earliest moment >= now inside the window: an allowed weekday, local time in
    [start, end). Inside the window already: now.

    A window with end <= start crosses midnight (22:00-06:00) and belongs to the day it
    opens: "fri 22:00-06:00" covers Saturday 03:00, and Monday 03:00 only if Sunday is
    allowed. start == end is the whole day.

    `best_hour` (the contact's best engagement hour, 0-23; int, Decimal or digits as
    DynamoDB returns them) narrows the window to that hour: now if we are in it, else its
    next occurrence on an allowed day, today if still ahead. A best hour outside the
    window, or not a valid hour, is ignored.
    """
    now = _utc(now)
    opens, closes = _clock(start), _clock(end)
    hour = _hour(best_hour)
    if hour is not None and not _overlaps(hour * 60, hour * 60 + 60, opens, closes):
        hour = None
    for day, opened, closed in _openings(now, zone, _weekdays(days), opens, closes):
        if hour is not None:
            # The best hour falls on the opening day unless the window crosses midnight and
            # the hour lies wholly before the window's start (03:00 in a 22:00-06:00 window).
            later = 1 if hour * 60 + 60 <= _minutes(opens) and closes <= opens else 0
            slot = _instant(datetime.combine(day + timedelta(days=later), time(hour)), zone)
            opened, closed = max(opened, slot), min(closed, slot + timedelta(hours=1))
        if now < closed and opened < closed:
            return max(opened, now)
    return now  # Unreachable for a real window; continuing beats failing the journey.


def quiet_until(now: datetime, zone: tzinfo, start: str, end: str) -> datetime | None:
    """When the quiet hours [start, end) local (usually across midnight, 21:00-08:00) end,
    if `now` is inside them; None otherwise, and None when start == end (no quiet hours,
    rather than quiet forever)."""
    now = _utc(now)
    opens, closes = _clock(start), _clock(end)
    if opens == closes:
        return None
    for _day, opened, closed in _openings(now, zone, set(range(7)), opens, closes):
        if opened <= now < closed:
            return closed
    return None


def shift_date(value: object, shift_text: str, shift_seconds: int, zone: tzinfo) -> str | None:
    """Move a date attribute by a duration and write it back in the form it came in: a
    date stays "YYYY-MM-DD", a date-time stays ISO with its own offset ("Z" stays "Z").

    Months and years are calendar arithmetic, clamped to the month's end (Jan 31 + 1 month
    is Feb 28 or 29); "1 month 2 days" applies the month then the days. Any other shift
    adds `shift_seconds`. A naive date-time is local in `zone`. None when the value is
    missing, unreadable or the result leaves the calendar.
    """
    written = _written(value)
    if written is None:
        return None
    months, seconds = _calendar_split(shift_text, shift_seconds)
    own = written.tzinfo or zone
    try:
        moved = _add(_instant(_add_months(written, months), zone), seconds, own).astimezone(own)
    except (OverflowError, ValueError):
        return None
    if _is_date_only(value):
        return moved.date().isoformat()
    if written.tzinfo is None:
        return moved.replace(tzinfo=None).isoformat()
    text = moved.isoformat()
    if isinstance(value, str) and value.strip().upper().endswith("Z"):
        text = text.removesuffix("+00:00") + "Z"
    return text


def next_occurrence(
    value: object,
    recurs: str,
    offset_seconds: int,
    at: str | None,
    zone: tzinfo,
    now: datetime,
) -> datetime | None:
    """The next instant >= now at which a date trigger fires: the date's anniversary
    (yearly), its day of the month (monthly) or the date itself (once), moved by the
    offset, at the local time `at`. None when the date is missing or, for once, past.

    The date is the calendar day as written. A day the month lacks is clamped to its end:
    Feb 29 fires on Feb 28 in other years, the 31st on the 30th in April. Occurrences
    before the date itself never fire (the date itself does).
    """
    written = _written(value)
    if recurs not in RECURRENCES:
        raise ValueError(f"recurs must be one of {', '.join(RECURRENCES)}, got {recurs!r}")
    if written is None:
        return None
    now = _utc(now)
    first = written.date()
    if recurs == "once":
        entry = wait_until_moment(first, offset_seconds, at, zone, now)
        return entry if entry >= now else None
    step = 12 if recurs == "yearly" else 1
    today = _local(now, zone).date()
    elapsed = ((today.year - first.year) * 12 + today.month - first.month) // step
    # An offset can pull an occurrence from a later period into this one, or push an
    # earlier one into it: look as many periods around today as the offset spans.
    reach = abs(offset_seconds) // (28 * DAY * step) + 2
    for count in range(max(0, elapsed - reach), max(0, elapsed) + reach + 1):
        entry = wait_until_moment(_add_months(first, count * step), offset_seconds, at, zone, now)
        if entry >= now:
            return entry
    return None


def to_iso_utc(moment: datetime) -> str:
    """The instant as Step Functions reads a Wait timestamp: 2026-11-23T08:00:00Z (whole
    seconds)."""
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- helpers -----------------------------------------------------------------------------


def _utc(moment: datetime) -> datetime:
    """The instant in UTC; a naive datetime is a caller's bug (whose local time?), not a
    guess we make."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got {moment!r}")
    return moment.astimezone(UTC)


def _written(value: object) -> datetime | None:
    """The value as written: naive when it carries no offset, a date as its midnight."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time())
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def _is_date_only(value: object) -> bool:
    if isinstance(value, str):
        try:
            date.fromisoformat(value.strip())
        except ValueError:
            return False
        return True
    return isinstance(value, date) and not isinstance(value, datetime)


def _instant(local: datetime, zone: tzinfo) -> datetime:
    """A wall-clock time as a UTC instant. fold=0 picks the first of a repeated time and,
    for a skipped time, the offset in force before the jump, which lands after it by the
    gap: 02:30 on a spring-forward night in Paris becomes 03:30."""
    if local.tzinfo is not None:
        return local.astimezone(UTC)
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _local(moment: datetime, zone: tzinfo) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None)


def _add(moment: datetime, seconds: int, zone: tzinfo) -> datetime:
    """Add a duration: whole days on the local calendar, the rest as elapsed time."""
    sign = -1 if seconds < 0 else 1
    days, rest = divmod(abs(seconds), DAY)
    if days:  # Skipped for 0 days: a round trip through wall time would lose `fold`.
        moment = _instant(_local(moment, zone) + timedelta(days=sign * days), zone)
    return moment.astimezone(UTC) + timedelta(seconds=sign * rest)


def _add_months(moment: _Day, months: int) -> _Day:
    """Calendar months later (or earlier), the day clamped to the month's last."""
    year, month = divmod(moment.year * 12 + moment.month - 1 + months, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return moment.replace(year=year, month=month + 1, day=min(moment.day, last))


def _calendar_split(text: str, seconds: int) -> tuple[int, int]:
    """(calendar months, remaining seconds) of a shift. A shift without months or years,
    or one we cannot read, is all seconds: exactly what the compiler measured."""
    raw = text.strip()
    sign = -1 if raw.startswith("-") else 1
    months = rest = 0
    try:
        for number, unit in _PART.findall(raw):
            if unit.lower() in _CALENDAR_MONTHS:
                months += int(number) * _CALENDAR_MONTHS[unit.lower()]
            else:
                rest += parse_duration(number + unit).seconds
    except ValueError:
        return 0, seconds
    return (sign * months, sign * rest) if months else (0, seconds)


def _clock(text: str) -> time:
    """A time of day written "HH:MM" (the compiler has validated it)."""
    return time.fromisoformat(text.strip())


def _minutes(clock: time) -> int:
    return clock.hour * 60 + clock.minute


def _overlaps(first: int, last: int, opens: time, closes: time) -> bool:
    """Whether minutes [first, last) of the day meet the daily window [opens, closes):
    two arcs of a circle meet when either one's start lies in the other."""
    start, end = _minutes(opens), _minutes(closes)

    def inside(minute: int) -> bool:
        return start <= minute < end if start < end else minute >= start or minute < end

    return inside(first) or first <= start < last


def _openings(
    now: datetime, zone: tzinfo, weekdays: set[int], opens: time, closes: time
) -> Iterator[tuple[date, datetime, datetime]]:
    """Each opening (local day, opens, closes as UTC instants) of a daily window on the
    given weekdays, in order, from the day before today (a window opened last night may
    still be open) to a day more than a week ahead."""
    overnight = closes <= opens
    today = _local(now, zone).date()
    for offset in range(-1, 9):
        day = today + timedelta(days=offset)
        if day.weekday() in weekdays:
            close_day = day + timedelta(days=1 if overnight else 0)
            yield (
                day,
                _instant(datetime.combine(day, opens), zone),
                _instant(datetime.combine(close_day, closes), zone),
            )


def _weekdays(days: Iterable[str]) -> set[int]:
    """Weekday numbers (Monday 0) from "mon".."sun"; none recognised means every day."""
    names = {d.strip().lower()[:3] for d in days}
    return {n for n, name in enumerate(WEEKDAYS) if name in names} or set(range(7))


def _hour(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return int(number) if number.is_integer() and 0 <= number <= 23 else None
