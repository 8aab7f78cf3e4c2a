"""The two layers of the working-day calendar: the holidays package for every year, our swap files on top.

Known dates: Tết Đinh Mùi 2027 (no swap file yet) and the 2026 corrections the old hand-written file lacked.
"""
from __future__ import annotations

import dataclasses
import logging
from datetime import date, datetime

import pytest

import topology.calendar as calendar_module
from schemas.errors import GplxError
from topology.calendar import CalendarError, WorkingCalendar, default_calendar

cal = default_calendar()


@pytest.mark.parametrize("day, working, why", [
    (date(2027, 2, 3), True, "Wednesday before Tết Đinh Mùi"),
    (date(2027, 2, 4), False, "29 Tết"),
    (date(2027, 2, 5), False, "30 Tết, New Year's Eve"),
    (date(2027, 2, 6), False, "mùng 1, a Saturday"),
    (date(2027, 2, 8), False, "mùng 3"),
    (date(2027, 2, 9), False, "compensatory for mùng 1 on Saturday"),
    (date(2027, 2, 10), False, "compensatory for mùng 2 on Sunday"),
    (date(2027, 2, 11), True, "first day back"),
    (date(2027, 4, 16), False, "Hùng Kings, 10/3 lunar"),
    (date(2027, 5, 3), False, "compensatory for 1 May on Saturday"),
    (date(2027, 9, 3), False, "National Day's adjacent day"),
    (date(2026, 1, 2), False, "New Year swap (12729/VPCP-KGVX)"),
    (date(2026, 1, 10), True, "Saturday worked for 2 Jan"),
    (date(2026, 8, 22), True, "Saturday worked for 31 Aug"),
    (date(2026, 8, 31), False, "National Day break 29 Aug - 2 Sep"),
    (date(2026, 11, 24), False, "Ngày Văn hóa Việt Nam (from the package; see the 2026 file's notes)"),
    (date(2025, 4, 26), True, "Saturday worked for 2 May 2025"),
    (date(2025, 5, 2), False, "swapped day off"),
])
def test_known_dates(day, working, why):
    assert cal.is_working_day(day) is working, why


def test_a_deadline_across_tet_2027_skips_the_whole_break():
    submitted = datetime(2027, 2, 3, 10)  # Wednesday, the last working day before Tết
    assert cal.add_working_days(submitted, 2) == datetime(2027, 2, 12, 10)  # Thu 11 and Fri 12 Feb
    assert cal.add_working_days(submitted, 5) == datetime(2027, 2, 17, 10)  # then Mon 15 - Wed 17 Feb
    assert cal.working_days_between(submitted, datetime(2027, 2, 11, 9, 59)) == 0
    assert cal.working_days_between(submitted, datetime(2027, 2, 11, 10)) == 1


def _swaps(**lists) -> dict:
    return {"year": 2027, "source": "test", **lists}


def test_a_swap_file_adds_days_off_and_working_days_and_removes_wrong_base_days():
    swapped = WorkingCalendar.from_documents([_swaps(
        days_off=[{"date": "2027-02-11"}],        # an extra day off after Tết (a weekday the package has open)
        working_days=[{"date": "2027-02-20"}],    # the Saturday worked for it
        removed=[{"date": "2027-11-24"}],         # a base holiday the government did not give
    )])
    assert swapped.is_working_day(date(2027, 2, 11)) is False
    assert swapped.is_working_day(date(2027, 2, 20)) is True
    assert swapped.is_working_day(date(2027, 11, 24)) is True
    assert swapped.is_working_day(date(2027, 2, 10)) is False  # the base is kept where the file says nothing
    assert swapped.add_working_days(datetime(2027, 2, 3, 10), 2) == datetime(2027, 2, 15, 10)


def test_removed_also_cancels_a_base_make_up_day():
    base = WorkingCalendar.from_documents([])
    assert base.is_working_day(date(2026, 8, 22)) is True  # the package knows this make-up Saturday
    corrected = WorkingCalendar.from_documents([{"year": 2026, "removed": [{"date": "2026-08-22"}]}])
    assert corrected.is_working_day(date(2026, 8, 22)) is False


@pytest.mark.parametrize("doc, message", [
    ({"year": 2027, "holidays": []}, "unknown key 'holidays'"),
    ({"year": "2027"}, 'needs an integer "year"'),
    (_swaps(days_off=[{"date": "2028-01-03"}]), "outside 2027; move it to holidays-2028.json"),
    (_swaps(days_off=[{"day": "2027-01-04"}]), 'needs "date": "YYYY-MM-DD"'),
    (_swaps(working_days=[{"date": "2027-02-11"}]), "a weekday"),
    (_swaps(days_off=[{"date": "2027-02-11"}], removed=[{"date": "2027-02-11"}]), "in two lists"),
])
def test_a_bad_swap_file_is_one_line_naming_the_file_and_the_fix(doc, message):
    with pytest.raises(CalendarError, match=message) as caught:
        WorkingCalendar.from_documents([doc], ["topology/data/holidays-2027.json"])
    assert str(caught.value).startswith("topology/data/holidays-2027.json: ")
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, GplxError)  # the CLI prints it as one line, no traceback


def test_two_files_for_one_year_are_refused():
    with pytest.raises(CalendarError, match="a second swap file for 2027"):
        WorkingCalendar.from_documents([_swaps(), _swaps()])


def test_load_warns_once_when_next_years_swap_file_is_missing(caplog):
    with caplog.at_level(logging.WARNING, logger="topology.calendar"):
        WorkingCalendar.load(today=date(2026, 11, 30))
    assert len(caplog.records) == 1
    assert "no holiday swap file for 2027" in caplog.text
    assert "topology/data/holidays-2027.json" in caplog.text


def test_load_is_quiet_when_this_and_next_years_files_exist(caplog):
    with caplog.at_level(logging.WARNING, logger="topology.calendar"):
        WorkingCalendar.load(today=date(2025, 6, 1))
    assert caplog.records == []


def test_the_package_is_asked_once_per_year_not_per_day_or_evaluation(monkeypatch):
    calls: list[int] = []
    real = calendar_module.base_year
    monkeypatch.setattr(calendar_module, "base_year", lambda year: calls.append(year) or real(year))
    fresh = WorkingCalendar.from_documents([])
    for hour in range(500):
        fresh.add_working_days(datetime(2027, 1, 20, hour % 24), 5)   # across Tết 2027
        fresh.working_days_between(datetime(2027, 1, 20), datetime(2027, 2, 20))
    assert calls == [2027]


def test_the_calendar_is_a_frozen_value():
    with pytest.raises(dataclasses.FrozenInstanceError):
        cal.days_off = frozenset()  # type: ignore[misc]
    assert WorkingCalendar.from_documents([_swaps()]) == WorkingCalendar.from_documents([_swaps()])
