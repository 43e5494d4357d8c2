"""Time-zone maths of the schedule function: concrete instants, DST days included.

Calendar used below: 2026-11-16 is a Monday, 2026-11-20 a Friday. Europe/Paris is UTC+1 in
winter and UTC+2 in summer; it springs forward on 2026-03-29 (02:00 -> 03:00) and falls back
on 2026-10-25 (03:00 -> 02:00). America/New_York is UTC-5/-4; it springs forward on
2026-03-08 and falls back on 2026-11-01 (02:00 -> 01:00).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from journeys.scheduling import (
    next_occurrence,
    next_window,
    parse_moment,
    quiet_until,
    resolve_zone,
    shift_date,
    to_iso_utc,
    wait_until_moment,
)

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAY = 86400


def utc(text: str) -> datetime:
    """An instant written in UTC, e.g. "2026-11-21T08:00"."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# -- resolve_zone -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("contact", "default", "expected"),
    [
        ("Europe/Paris", "America/New_York", "Europe/Paris"),
        (None, "America/New_York", "America/New_York"),
        ("", "America/New_York", "America/New_York"),
        ("Mars/Olympus_Mons", "America/New_York", "America/New_York"),
        ("../../etc/passwd", "Europe/Paris", "Europe/Paris"),
        ("Europe", None, "UTC"),
        (" Europe/Paris ", None, "Europe/Paris"),
        (Decimal(1), "Europe/Paris", "Europe/Paris"),
        (None, None, "UTC"),
        ("nowhere", "nowhere either", "UTC"),
    ],
)
def test_zone_is_the_contacts_else_the_workflows_else_utc(
    contact: object, default: object, expected: str
) -> None:
    assert resolve_zone(contact, default).key == expected


# -- parse_moment -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-12-01", utc("2026-11-30T23:00")),  # a date is local midnight
        ("2026-07-01", utc("2026-06-30T22:00")),  # summer time
        ("2026-12-01T09:00", utc("2026-12-01T08:00")),  # naive is local
        ("2026-12-01T09:00:00Z", utc("2026-12-01T09:00")),
        ("2026-12-01T09:00:00.000Z", utc("2026-12-01T09:00")),
        ("2026-12-01T09:00:00+05:30", utc("2026-12-01T03:30")),
        (" 2026-12-01 ", utc("2026-11-30T23:00")),
        (date(2026, 12, 1), utc("2026-11-30T23:00")),
        (datetime(2026, 12, 1, 9), utc("2026-12-01T08:00")),
        (datetime(2026, 12, 1, 9, tzinfo=NEW_YORK), utc("2026-12-01T14:00")),
        # A time skipped by spring-forward moves on by the gap: 02:30 -> 03:30 CEST.
        ("2026-03-29T02:30", utc("2026-03-29T01:30")),
        # A time that happens twice at fall-back is its first occurrence (still CEST).
        ("2026-10-25T02:30", utc("2026-10-25T00:30")),
    ],
)
def test_reads_dates_and_date_times_in_the_contacts_zone(value: object, expected: datetime) -> None:
    moment = parse_moment(value, PARIS)
    assert moment == expected
    assert moment is not None and moment.tzinfo is UTC


def test_new_york_dst_edges_resolve_to_real_instants() -> None:
    assert parse_moment("2026-03-08T02:30", NEW_YORK) == utc("2026-03-08T07:30")  # 03:30 EDT
    assert parse_moment("2026-11-01T01:30", NEW_YORK) == utc("2026-11-01T05:30")  # first, EDT


@pytest.mark.parametrize("value", [None, "", "soon", "2026-13-01", "01/12/2026", 42, 1.5, {}, []])
def test_missing_or_unreadable_dates_are_none(value: object) -> None:
    assert parse_moment(value, PARIS) is None


# -- wait_until_moment --------------------------------------------------------------------

NOW = utc("2026-11-01T12:00")


def test_ten_days_before_a_due_date_at_nine_local() -> None:
    # GIVEN due_date 2026-12-01, offset -10 days, at 09:00, a contact in Paris
    # THEN the wait ends on 2026-11-21 at 09:00 Paris time, 08:00 UTC
    assert wait_until_moment("2026-12-01", -10 * DAY, "09:00", PARIS, NOW) == utc(
        "2026-11-21T08:00"
    )


def test_at_is_local_time_in_new_york_on_the_offset_day() -> None:
    # Nov 10 - 10 days = Oct 31, still daylight time in New York (UTC-4).
    assert wait_until_moment("2026-11-10", -10 * DAY, "09:00", NEW_YORK, NOW) == utc(
        "2026-10-31T13:00"
    )


def test_at_uses_the_day_as_written_not_as_seen_from_the_contacts_zone() -> None:
    # GIVEN a date exported as midnight UTC: in New York that instant is still Nov 30
    # THEN "at 09:00" still means December 1st
    assert wait_until_moment("2026-12-01T00:00:00Z", 0, "09:00", NEW_YORK, NOW) == utc(
        "2026-12-01T14:00"
    )


def test_a_sub_day_offset_with_at_moves_the_day() -> None:
    assert wait_until_moment("2026-12-01", -12 * 3600, "09:00", PARIS, NOW) == utc(
        "2026-11-30T08:00"
    )


def test_at_on_a_time_skipped_by_spring_forward_is_the_real_time_after_it() -> None:
    assert wait_until_moment("2026-03-29", 0, "02:30", PARIS, NOW) == utc("2026-03-29T01:30")


def test_without_at_whole_days_keep_the_local_clock_across_dst() -> None:
    # 18:00 CEST on Apr 2, 10 days earlier is 18:00 CET on Mar 23: 17:00 UTC, not 16:00.
    assert wait_until_moment("2026-04-02T18:00:00+02:00", -10 * DAY, None, PARIS, NOW) == utc(
        "2026-03-23T17:00"
    )
    # A date stays on local midnight: Apr 5 - 10 days is Mar 26 00:00 CET, not Mar 25 23:00.
    assert wait_until_moment("2026-04-05", -10 * DAY, None, PARIS, NOW) == utc("2026-03-25T23:00")


def test_without_at_hours_are_exact_elapsed_time_across_dst() -> None:
    # 04:00 CEST on the spring-forward morning is 02:00 UTC; three real hours before is
    # 23:00 UTC the day before (00:00 CET), although the local clock shows four hours less.
    assert wait_until_moment("2026-03-29T04:00:00+02:00", -3 * 3600, None, PARIS, NOW) == utc(
        "2026-03-28T23:00"
    )
    assert wait_until_moment("2026-12-01T18:00:00Z", -2 * 3600, None, PARIS, NOW) == utc(
        "2026-12-01T16:00"
    )


@pytest.mark.parametrize("value", [None, "", "not a date", 12])
def test_a_missing_date_continues_now(value: object) -> None:
    assert wait_until_moment(value, -10 * DAY, "09:00", PARIS, NOW) == NOW


def test_a_past_date_is_returned_as_is() -> None:
    assert wait_until_moment("2020-01-01", 0, "09:00", PARIS, NOW) == utc("2020-01-01T08:00")


# -- next_window --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc("2026-11-18T10:00:00.123"), utc("2026-11-18T10:00:00.123")),  # inside: now
        (utc("2026-11-18T07:00"), utc("2026-11-18T08:00")),  # before opening: 09:00 local
        (utc("2026-11-18T08:00"), utc("2026-11-18T08:00")),  # start is inside
        (utc("2026-11-18T17:00"), utc("2026-11-19T08:00")),  # end is outside
        (utc("2026-11-20T17:30"), utc("2026-11-23T08:00")),  # Friday evening: Monday
        (utc("2026-11-21T10:00"), utc("2026-11-23T08:00")),  # Saturday: Monday
        (utc("2026-11-22T23:30"), utc("2026-11-23T08:00")),  # Monday 00:30 local
    ],
)
def test_office_hours_on_weekdays(now: datetime, expected: datetime) -> None:
    assert next_window(now, PARIS, WEEKDAYS, "09:00", "18:00") == expected


def test_weekend_only_window_skips_the_week() -> None:
    assert next_window(utc("2026-11-16T10:00"), PARIS, ["sat", "sun"], "10:00", "12:00") == utc(
        "2026-11-21T09:00"
    )


@pytest.mark.parametrize(
    ("days", "now", "expected"),
    [
        (["fri"], utc("2026-11-20T18:00"), utc("2026-11-20T21:00")),  # Fri 19:00: opens 22:00
        (["fri"], utc("2026-11-20T23:00"), utc("2026-11-20T23:00")),  # Fri 24:00: inside
        (["fri"], utc("2026-11-21T02:00"), utc("2026-11-21T02:00")),  # Sat 03:00: Friday's
        (["fri"], utc("2026-11-21T05:00"), utc("2026-11-27T21:00")),  # Sat 06:00: closed
        (["fri"], utc("2026-11-23T02:00"), utc("2026-11-27T21:00")),  # Mon 03:00 is Sunday's
        (["sun"], utc("2026-11-23T02:00"), utc("2026-11-23T02:00")),  # ... which is open
    ],
)
def test_window_crossing_midnight_belongs_to_the_day_it_opens(
    days: list[str], now: datetime, expected: datetime
) -> None:
    assert next_window(now, PARIS, days, "22:00", "06:00") == expected


def test_equal_start_and_end_is_the_whole_day() -> None:
    # Sunday 13:00 local, only Mondays: Monday 00:00 local.
    assert next_window(utc("2026-11-22T12:00"), PARIS, ["mon"], "00:00", "00:00") == utc(
        "2026-11-22T23:00"
    )
    assert next_window(utc("2026-11-23T12:00"), PARIS, ["mon"], "00:00", "00:00") == utc(
        "2026-11-23T12:00"
    )


def test_day_names_are_forgiving_and_none_means_every_day() -> None:
    sunday = utc("2026-11-22T10:00")
    assert next_window(sunday, PARIS, ["Mon"], "09:00", "18:00") == utc("2026-11-23T08:00")
    assert next_window(sunday, PARIS, ["monday"], "09:00", "18:00") == utc("2026-11-23T08:00")
    early_sunday = utc("2026-11-22T07:00")
    assert next_window(early_sunday, PARIS, ["someday"], "09:00", "18:00") == utc(
        "2026-11-22T08:00"
    )
    assert next_window(early_sunday, PARIS, [], "09:00", "18:00") == utc("2026-11-22T08:00")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc("2026-11-20T10:00"), utc("2026-11-20T13:00")),  # Fri 11:00: wait for 14:00
        (utc("2026-11-20T13:30"), utc("2026-11-20T13:30")),  # Fri 14:30: in the best hour
        (utc("2026-11-20T15:00"), utc("2026-11-23T13:00")),  # passed: next allowed day
        (utc("2026-11-21T06:00"), utc("2026-11-23T13:00")),  # Saturday: Monday 14:00
    ],
)
def test_best_hour_is_preferred_inside_the_window(now: datetime, expected: datetime) -> None:
    assert next_window(now, PARIS, WEEKDAYS, "09:00", "18:00", best_hour=14) == expected


@pytest.mark.parametrize("best_hour", [14, Decimal(14), "14", 14.0])
def test_best_hour_accepts_what_dynamodb_returns(best_hour: object) -> None:
    now = utc("2026-11-20T10:00")
    assert next_window(now, PARIS, WEEKDAYS, "09:00", "18:00", best_hour) == utc("2026-11-20T13:00")


@pytest.mark.parametrize("best_hour", [None, 20, 24, -1, 14.5, "x", True, [], float("nan")])
def test_best_hour_outside_the_window_or_invalid_is_ignored(best_hour: object) -> None:
    now = utc("2026-11-20T10:00")
    assert next_window(now, PARIS, WEEKDAYS, "09:00", "18:00", best_hour) == now


def test_best_hour_partly_before_the_window_counts_from_the_window_start() -> None:
    # Window 09:30-18:00, best hour 9: its last half hour, from 09:30 local.
    assert next_window(utc("2026-11-18T06:00"), PARIS, WEEKDAYS, "09:30", "18:00", 9) == utc(
        "2026-11-18T08:30"
    )
    # At 12:00 local it has passed: tomorrow 09:30, not now.
    assert next_window(utc("2026-11-18T11:00"), PARIS, WEEKDAYS, "09:30", "18:00", 9) == utc(
        "2026-11-19T08:30"
    )


def test_best_hour_after_midnight_in_an_overnight_window() -> None:
    # Friday 22:00-06:00, best hour 3: Saturday 03:00 local.
    assert next_window(utc("2026-11-20T18:00"), PARIS, ["fri"], "22:00", "06:00", 3) == utc(
        "2026-11-21T02:00"
    )


def test_window_opening_in_the_spring_forward_gap_opens_when_the_clock_resumes() -> None:
    # GIVEN Sunday 00:30 CET on the spring-forward night, a 02:00-04:00 window
    # THEN it opens at 03:00 CEST (02:00 never happens), 01:00 UTC
    assert next_window(utc("2026-03-28T23:30"), PARIS, EVERY_DAY, "02:00", "04:00") == utc(
        "2026-03-29T01:00"
    )
    # A window wholly inside the gap does not exist that day: Monday 02:00 CEST.
    assert next_window(utc("2026-03-29T00:30"), PARIS, EVERY_DAY, "02:00", "03:00") == utc(
        "2026-03-30T00:00"
    )
    # Best hour 2 on that night is the first real minute after the gap.
    assert next_window(utc("2026-03-29T00:00"), PARIS, EVERY_DAY, "00:00", "06:00", 2) == utc(
        "2026-03-29T01:00"
    )


def test_window_opening_follows_the_new_offset_after_spring_forward() -> None:
    # Saturday 18:30 CET; Sunday 09:00 is already CEST.
    assert next_window(utc("2026-03-28T17:30"), PARIS, EVERY_DAY, "09:00", "18:00") == utc(
        "2026-03-29T07:00"
    )
    # New York: Saturday 18:00 EST; Sunday 09:00 EDT.
    assert next_window(utc("2026-03-07T23:00"), NEW_YORK, EVERY_DAY, "09:00", "17:00") == utc(
        "2026-03-08T13:00"
    )


@pytest.mark.parametrize(
    ("zone", "now", "expected"),
    [
        # Paris 02:00-03:00 on fall-back night lasts two real hours (CEST then CET).
        (PARIS, utc("2026-10-25T00:30"), utc("2026-10-25T00:30")),  # 02:30 CEST
        (PARIS, utc("2026-10-25T01:30"), utc("2026-10-25T01:30")),  # 02:30 CET, again
        (PARIS, utc("2026-10-25T02:00"), utc("2026-10-26T01:00")),  # 03:00 CET: closed
        (PARIS, utc("2026-10-24T23:00"), utc("2026-10-25T00:00")),  # 01:00 CEST: opens 02:00
    ],
)
def test_window_on_fall_back_night(zone: ZoneInfo, now: datetime, expected: datetime) -> None:
    assert next_window(now, zone, EVERY_DAY, "02:00", "03:00") == expected


def test_window_on_new_york_fall_back_night() -> None:
    # 01:00-02:00 happens twice: 05:00-07:00 UTC.
    for inside in (utc("2026-11-01T05:30"), utc("2026-11-01T06:30")):
        assert next_window(inside, NEW_YORK, EVERY_DAY, "01:00", "02:00") == inside
    assert next_window(utc("2026-11-01T07:00"), NEW_YORK, EVERY_DAY, "01:00", "02:00") == utc(
        "2026-11-02T06:00"
    )


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_window(datetime(2026, 11, 18, 10), PARIS, WEEKDAYS, "09:00", "18:00")


# -- quiet_until --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc("2026-11-20T21:00"), utc("2026-11-21T07:00")),  # 22:00 local: until 08:00
        (utc("2026-11-20T20:00"), utc("2026-11-21T07:00")),  # 21:00: start is quiet
        (utc("2026-11-21T03:00"), utc("2026-11-21T07:00")),  # 04:00, after midnight
        (utc("2026-11-21T07:00"), None),  # 08:00: end is not quiet
        (utc("2026-11-20T19:30"), None),  # 20:30
        (utc("2026-11-20T12:00"), None),
    ],
)
def test_quiet_hours_across_midnight(now: datetime, expected: datetime | None) -> None:
    assert quiet_until(now, PARIS, "21:00", "08:00") == expected


def test_quiet_hours_within_one_day_and_none_when_start_equals_end() -> None:
    assert quiet_until(utc("2026-11-20T11:30"), PARIS, "12:00", "14:00") == utc("2026-11-20T13:00")
    assert quiet_until(utc("2026-11-20T13:00"), PARIS, "12:00", "14:00") is None
    assert quiet_until(utc("2026-11-20T11:30"), PARIS, "12:00", "12:00") is None


def test_quiet_hours_end_on_the_local_clock_across_dst() -> None:
    # Paris fall-back night: 08:00 CET on Sunday is 07:00 UTC (the day before it was 06:00).
    assert quiet_until(utc("2026-10-24T22:00"), PARIS, "21:00", "08:00") == utc("2026-10-25T07:00")
    assert quiet_until(utc("2026-10-23T22:00"), PARIS, "21:00", "08:00") == utc("2026-10-24T06:00")
    # New York spring-forward night: 00:00 EST, quiet until 08:00 EDT = 12:00 UTC.
    assert quiet_until(utc("2026-03-08T05:00"), NEW_YORK, "21:00", "08:00") == utc(
        "2026-03-08T12:00"
    )


# -- shift_date ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text", "seconds", "expected"),
    [
        ("2026-01-31", "1 month", 30 * DAY, "2026-02-28"),
        ("2024-01-31", "1 month", 30 * DAY, "2024-02-29"),
        ("2026-03-31", "-1 month", -30 * DAY, "2026-02-28"),
        ("2026-05-31", "1 mo", 30 * DAY, "2026-06-30"),
        ("2026-12-15", "1 month", 30 * DAY, "2027-01-15"),
        ("2026-01-15", "-2 months", -60 * DAY, "2025-11-15"),
        ("2024-02-29", "1 year", 365 * DAY, "2025-02-28"),
        ("2026-06-10", "2y", 730 * DAY, "2028-06-10"),
        ("2026-01-31", "1 month 2 days", 32 * DAY, "2026-03-02"),
        ("2026-03-31", "-1 month 2 days", -32 * DAY, "2026-02-26"),
        ("2026-03-25", "1 week", 7 * DAY, "2026-04-01"),  # across spring-forward
        ("2026-12-01", "-10 days", -10 * DAY, "2026-11-21"),
        ("2026-12-01", "1 fortnight", 14 * DAY, "2026-12-15"),  # unreadable: the seconds
    ],
)
def test_shifts_a_date_and_keeps_it_a_date(
    value: str, text: str, seconds: int, expected: str
) -> None:
    assert shift_date(value, text, seconds, PARIS) == expected


@pytest.mark.parametrize(
    ("value", "text", "seconds", "expected"),
    [
        ("2026-01-31T09:00:00Z", "1 month", 30 * DAY, "2026-02-28T09:00:00Z"),
        ("2026-03-31T09:00:00+02:00", "-1 month", -30 * DAY, "2026-02-28T09:00:00+02:00"),
        ("2026-12-01T22:00:00Z", "12 h", 12 * 3600, "2026-12-02T10:00:00Z"),
        ("2026-12-01T09:00:00-05:00", "-1 day", -DAY, "2026-11-30T09:00:00-05:00"),
        # Naive means Paris: a day keeps the clock across spring-forward...
        ("2026-03-28T09:00:00", "1 day", DAY, "2026-03-29T09:00:00"),
        # ...an hour is an hour: 01:30 CET + 1 h = 03:30 CEST.
        ("2026-03-29T01:30:00", "1 h", 3600, "2026-03-29T03:30:00"),
    ],
)
def test_shifts_a_date_time_and_keeps_its_offset(
    value: str, text: str, seconds: int, expected: str
) -> None:
    assert shift_date(value, text, seconds, PARIS) == expected


def test_shifts_date_objects_into_iso_text() -> None:
    assert shift_date(date(2026, 1, 31), "1 month", 30 * DAY, PARIS) == "2026-02-28"
    moment = datetime(2026, 3, 28, 9, tzinfo=PARIS)
    assert shift_date(moment, "1 day", DAY, PARIS) == "2026-03-29T09:00:00+02:00"


@pytest.mark.parametrize("value", [None, "", "soon", 3, "9999-12-31"])
def test_nothing_to_shift_or_off_the_calendar_is_none(value: object) -> None:
    assert shift_date(value, "1 day", DAY, PARIS) is None


# -- next_occurrence ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc("2026-11-01T12:00"), utc("2027-05-14T07:00")),
        (utc("2026-05-14T06:00"), utc("2026-05-14T07:00")),  # birthday morning, before 09:00
        (utc("2026-05-14T07:00"), utc("2026-05-14T07:00")),  # exactly now
        (utc("2026-05-14T07:00:01"), utc("2027-05-14T07:00")),  # just missed
    ],
)
def test_yearly_birthday_at_nine_local(now: datetime, expected: datetime) -> None:
    assert next_occurrence("1990-05-14", "yearly", 0, "09:00", PARIS, now) == expected


def test_february_29_birthdays_are_february_28_in_other_years() -> None:
    assert next_occurrence("1992-02-29", "yearly", 0, "09:00", PARIS, NOW) == utc(
        "2027-02-28T08:00"
    )
    assert next_occurrence("1992-02-29", "yearly", 0, "09:00", PARIS, utc("2027-11-01")) == utc(
        "2028-02-29T08:00"
    )


def test_yearly_offsets_reach_across_new_year() -> None:
    # Ten days before a Jan 5 birthday falls in this December.
    assert next_occurrence(
        "1990-01-05", "yearly", -10 * DAY, "09:00", PARIS, utc("2026-12-20")
    ) == utc("2026-12-26T08:00")
    # Ten days after a Dec 28 anniversary falls in this January.
    assert next_occurrence(
        "2020-12-28", "yearly", 10 * DAY, "09:00", PARIS, utc("2026-01-02")
    ) == utc("2026-01-07T08:00")


def test_yearly_date_is_the_day_as_written_in_the_contacts_zone() -> None:
    assert next_occurrence("1990-05-14T00:00:00Z", "yearly", 0, "09:00", NEW_YORK, NOW) == utc(
        "2027-05-14T13:00"
    )


def test_yearly_at_a_time_skipped_by_spring_forward() -> None:
    assert next_occurrence("1990-03-29", "yearly", 0, "02:30", PARIS, utc("2026-03-01")) == utc(
        "2026-03-29T01:30"
    )


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc("2026-02-02T12:00"), utc("2026-02-28T08:00")),  # clamped to February's end
        (utc("2026-03-01T12:00"), utc("2026-03-31T07:00")),  # summer time by then
        (utc("2026-04-01T12:00"), utc("2026-04-30T07:00")),
        (utc("2025-12-01T12:00"), utc("2026-01-31T08:00")),  # never before the date itself
    ],
)
def test_monthly_on_the_dates_day_clamped_to_month_end(now: datetime, expected: datetime) -> None:
    assert next_occurrence("2026-01-31", "monthly", 0, "09:00", PARIS, now) == expected


def test_monthly_starting_in_the_future_starts_on_its_date() -> None:
    assert next_occurrence("2027-06-30", "monthly", 0, "09:00", PARIS, NOW) == utc(
        "2027-06-30T07:00"
    )


def test_once_is_the_date_plus_offset_or_none_when_past() -> None:
    assert next_occurrence("2026-12-01", "once", -10 * DAY, "09:00", PARIS, NOW) == utc(
        "2026-11-21T08:00"
    )
    assert next_occurrence("2026-11-05", "once", -10 * DAY, "09:00", PARIS, NOW) is None


def test_without_at_it_is_local_midnight() -> None:
    assert next_occurrence("1990-05-14", "yearly", 0, None, PARIS, NOW) == utc("2027-05-13T22:00")


@pytest.mark.parametrize("value", [None, "", "not a date"])
def test_no_date_no_occurrence(value: object) -> None:
    assert next_occurrence(value, "yearly", 0, "09:00", PARIS, NOW) is None


def test_unknown_recurrence_is_a_caller_bug() -> None:
    with pytest.raises(ValueError, match="weekly"):
        next_occurrence("1990-05-14", "weekly", 0, "09:00", PARIS, NOW)


# -- to_iso_utc ---------------------------------------------------------------------------


def test_formats_any_aware_instant_as_utc_with_z() -> None:
    assert to_iso_utc(datetime(2026, 11, 21, 9, tzinfo=PARIS)) == "2026-11-21T08:00:00Z"
    assert to_iso_utc(utc("2026-11-21T08:00:00.999")) == "2026-11-21T08:00:00Z"
    plus_five = timezone(timedelta(hours=5))
    assert to_iso_utc(datetime(2026, 1, 1, 2, tzinfo=plus_five)) == "2025-12-31T21:00:00Z"


def test_formatting_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        to_iso_utc(datetime(2026, 11, 21, 8))
