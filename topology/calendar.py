"""Working days in Việt Nam: the clock of the legal processing times (2 working days to say what is missing,
5 to decide).

Why data: Tết moves every year and the government swaps days around it, so each year's holidays are a JSON file
in topology/data (holidays-<year>.json). A year without a file falls back to weekends plus the fixed-date holidays,
with a warning, rather than stopping the case processor on 1 January.

Time model: a working day is a whole local day (Asia/Ho_Chi_Minh, UTC+7, no daylight saving) that is neither a
weekend nor a holiday. Working time is the part of an interval that falls on working days, counted in units of
24 hours. So "Friday 10:00 + 1 working day" is Monday 10:00, and an application filed on Saturday starts its clock
at Monday 00:00. `working_days_between(a, add_working_days(a, n)) == n` holds for every a and n.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from importlib import resources

log = logging.getLogger(__name__)

#: Việt Nam's civil time; fixed offset, so local arithmetic never meets a DST gap.
VIETNAM_TZ = timezone(timedelta(hours=7), "ICT")

#: Holidays with a fixed solar date (Labour Code 2019 art. 112), used when a year has no calendar file.
FIXED_DATE_HOLIDAYS = ((1, 1), (4, 30), (5, 1), (9, 2))

_DAY = timedelta(days=1)


@dataclass(frozen=True)
class WorkingCalendar:
    """Holidays (closed weekdays) and make-up working days (open weekend days) for the years we have data for."""

    holidays: frozenset[date] = frozenset()
    working_weekend_days: frozenset[date] = frozenset()
    years: frozenset[int] = frozenset()  # years with a calendar file
    _warned: set[int] = field(default_factory=set, compare=False, repr=False)

    # -- loading -------------------------------------------------------------------------------------------------
    @classmethod
    def from_documents(cls, documents: list[dict]) -> "WorkingCalendar":
        """Build from parsed holidays-<year>.json documents."""
        holidays: set[date] = set()
        working: set[date] = set()
        years: set[int] = set()
        for doc in documents:
            years.add(int(doc["year"]))
            holidays.update(date.fromisoformat(h["date"]) for h in doc.get("holidays", ()))
            working.update(date.fromisoformat(h["date"]) for h in doc.get("working_days", ()))
        return cls(frozenset(holidays), frozenset(working), frozenset(years))

    @classmethod
    def load(cls) -> "WorkingCalendar":
        """Every holidays-*.json shipped in topology/data."""
        data = resources.files("topology").joinpath("data")
        docs = [json.loads(f.read_text(encoding="utf-8")) for f in sorted(data.iterdir(), key=lambda f: f.name)
                if f.name.startswith("holidays-") and f.name.endswith(".json")]
        return cls.from_documents(docs)

    # -- days ----------------------------------------------------------------------------------------------------
    def is_working_day(self, day: date) -> bool:
        if day.year not in self.years:
            self._warn_missing(day.year)
            if (day.month, day.day) in FIXED_DATE_HOLIDAYS:
                return False
        if day in self.working_weekend_days:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def _warn_missing(self, year: int) -> None:
        if year not in self._warned:
            self._warned.add(year)
            log.warning("no holiday calendar for %s: counting weekends and fixed-date holidays only "
                        "(add topology/data/holidays-%s.json)", year, year)

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after `day`."""
        day += _DAY
        while not self.is_working_day(day):
            day += _DAY
        return day

    # -- time ----------------------------------------------------------------------------------------------------
    def add_working_days(self, start: datetime, n: int) -> datetime:
        """The moment `n` working days of working time after `start` (same time zone as `start`)."""
        if n < 0:
            raise ValueError("n must be >= 0")
        local = _to_local(start)
        if not self.is_working_day(local.date()):
            # The clock starts at the beginning of the next working day.
            local = datetime.combine(self.next_working_day(local.date()), time())
        day, at = local.date(), local.time()
        for _ in range(n):
            day = self.next_working_day(day)
        return _from_local(datetime.combine(day, at), start)

    def working_days_between(self, a: datetime, b: datetime) -> int:
        """Whole working days of working time from `a` to `b` (0 if b <= a)."""
        la, lb = _to_local(a), _to_local(b)
        if lb <= la:
            return 0
        total = timedelta()
        day = la.date()
        while day <= lb.date():
            if self.is_working_day(day):
                lo = max(la, datetime.combine(day, time()))
                hi = min(lb, datetime.combine(day + _DAY, time()))
                if hi > lo:
                    total += hi - lo
            day += _DAY
        return total // _DAY


def _to_local(moment: datetime) -> datetime:
    """Naive local Vietnamese time; naive input is taken to be local already."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(VIETNAM_TZ).replace(tzinfo=None)


def _from_local(local: datetime, like: datetime) -> datetime:
    """Back to the time zone of `like` (naive stays naive)."""
    if like.tzinfo is None:
        return local
    return local.replace(tzinfo=VIETNAM_TZ).astimezone(like.tzinfo)


@lru_cache(maxsize=1)
def default_calendar() -> WorkingCalendar:
    """The shipped calendar, loaded once."""
    return WorkingCalendar.load()


def add_working_days(start: datetime, n: int) -> datetime:
    """`start` plus `n` working days, on the shipped calendar."""
    return default_calendar().add_working_days(start, n)


def working_days_between(a: datetime, b: datetime) -> int:
    """Whole working days from `a` to `b`, on the shipped calendar."""
    return default_calendar().working_days_between(a, b)
