"""Working days: weekends, Tết and the other public holidays, and the 2 / 5 working-day deadlines."""
from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from topology.calendar import WorkingCalendar, add_working_days, default_calendar, working_days_between

cal = default_calendar()


@pytest.mark.parametrize("day, working", [
    (date(2025, 3, 3), True),     # Monday
    (date(2025, 3, 8), False),    # Saturday
    (date(2025, 3, 9), False),    # Sunday
    (date(2025, 1, 1), False),    # New Year
    (date(2025, 1, 27), False),   # Tết Ất Tỵ (25 Jan - 2 Feb)
    (date(2025, 1, 31), False),
    (date(2025, 2, 3), True),     # first day back after Tết
    (date(2025, 4, 7), False),    # Hùng Kings (10/3 lunar)
    (date(2025, 4, 26), True),    # Saturday worked to make up for 2 May
    (date(2025, 4, 30), False),
    (date(2025, 5, 1), False),
    (date(2025, 5, 2), False),
    (date(2025, 9, 1), False),    # National Day + adjacent day
    (date(2025, 9, 2), False),
    (date(2025, 9, 3), True),
    (date(2026, 2, 16), False),   # Tết Bính Ngọ (14 - 22 Feb 2026, as announced)
    (date(2026, 2, 20), False),
    (date(2026, 2, 23), True),
    (date(2026, 4, 27), False),   # compensatory day: Hùng Kings fell on Sunday 26 Apr 2026
    (date(2026, 9, 1), False),
    (date(2026, 9, 2), False),
])
def test_working_days(day, working):
    assert cal.is_working_day(day) is working


def test_friday_plus_one_is_monday_same_time():
    assert add_working_days(datetime(2025, 3, 7, 10, 30), 1) == datetime(2025, 3, 10, 10, 30)


def test_weekend_submission_starts_the_clock_on_monday():
    assert add_working_days(datetime(2025, 3, 8, 15), 0) == datetime(2025, 3, 10)
    assert add_working_days(datetime(2025, 3, 8, 15), 2) == datetime(2025, 3, 12)


def test_tet_pauses_the_clock():
    # Submitted Friday 24 Jan 2025, the last working day before Tết.
    submitted = datetime(2025, 1, 24, 9)
    assert add_working_days(submitted, 2) == datetime(2025, 2, 4, 9)  # 2 working days: notice due
    assert add_working_days(submitted, 5) == datetime(2025, 2, 7, 9)  # 5 working days: decision due
    assert working_days_between(submitted, datetime(2025, 2, 3, 8, 59)) == 0
    assert working_days_between(submitted, datetime(2025, 2, 3, 9)) == 1


def test_tet_2026_timeouts():
    submitted = datetime(2026, 2, 12, 14)  # Thursday before Tết Bính Ngọ
    assert add_working_days(submitted, 2) == datetime(2026, 2, 23, 14)
    assert add_working_days(submitted, 5) == datetime(2026, 2, 26, 14)


def test_aware_datetimes_count_in_vietnamese_days_and_keep_their_zone():
    # 2025-03-07 20:00 UTC is already Saturday 03:00 in Hà Nội: the clock starts Monday 00:00 local.
    start = datetime(2025, 3, 7, 20, tzinfo=timezone.utc)
    result = add_working_days(start, 1)
    assert result.tzinfo is timezone.utc
    assert result == datetime(2025, 3, 10, 17, tzinfo=timezone.utc)  # Tuesday 00:00 local


def test_between_is_zero_backwards():
    assert working_days_between(datetime(2025, 3, 10), datetime(2025, 3, 3)) == 0


def test_negative_n_refused():
    with pytest.raises(ValueError):
        add_working_days(datetime(2025, 3, 3), -1)


def test_a_year_without_a_swap_file_still_has_its_holidays_and_deciding_logs_nothing(caplog):
    # Was: a fallback to fixed-date holidays with a warning per year during decisions. Now every year has the
    # holidays package's calendar as its base, and the missing-file warning is given once, at load (see
    # test_calendar_swaps.py), so deciding a case writes no log line.
    bare = WorkingCalendar.from_documents([])
    with caplog.at_level(logging.WARNING, logger="topology.calendar"):
        assert bare.is_working_day(date(2031, 1, 1)) is False      # New Year (fixed date)
        assert bare.is_working_day(date(2031, 4, 30)) is False
        assert bare.is_working_day(date(2031, 9, 2)) is False
        assert bare.is_working_day(date(2031, 1, 4)) is False      # Saturday
        assert bare.is_working_day(date(2031, 1, 2)) is True       # Thursday
        assert bare.is_working_day(date(2031, 1, 23)) is False     # Tết Tân Hợi (lunar date computed)
    assert caplog.text == ""


_moments = st.datetimes(min_value=datetime(2024, 12, 1), max_value=datetime(2026, 12, 31))


@settings(max_examples=300, deadline=None)
@given(_moments, st.integers(min_value=0, max_value=30))
def test_add_then_count_round_trips(start, n):
    end = add_working_days(start, n)
    assert end >= start
    assert working_days_between(start, end) == n
    assert cal.is_working_day(end.date())  # a deadline never falls on a day the office is closed


@settings(max_examples=200, deadline=None)
@given(_moments, _moments)
def test_between_is_monotonic(a, b):
    lo, hi = min(a, b), max(a, b)
    assert working_days_between(lo, hi) <= working_days_between(lo, hi + timedelta(days=3))
