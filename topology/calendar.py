"""Working days in Việt Nam: the clock of the legal processing times (2 working days to say what is missing,
5 to decide).

Where the days come from, in two layers:
- the base, for every year: the `holidays` package's Vietnamese calendar (Labour Code art. 112: New Year, the five
  Tết days with their lunar dates computed, Hùng Kings on 10/3 lunar, 30/4, 1/5, National Day and its adjacent day,
  the compensatory days when a holiday falls on a weekend, and the swaps it knows of). So a year nobody wrote a
  file for (Tết 2027 is 4-10 Feb) is still right, instead of counting Tết as working days;
- on top, per year, a swap file topology/data/holidays-<year>.json with what only the government's yearly notices
  say: `days_off` (extra days off, e.g. a Friday swapped to make a 4-day weekend), `working_days` (the weekend
  days worked to make up for them) and `removed` (dates where the package is wrong; they go back to the plain
  weekday/weekend rule). Each entry names its notice. `load()` warns once when next year's file is missing.

The calendar is a frozen value built once at start-up and carried in the RuleSet: deciding a case does no I/O.
Each year's closed weekdays and open weekend days are computed on first use and cached (about 3 ms a year, once), so
the per-case hot path is a dict lookup and a set membership test per day.

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

import holidays as holidays_package


from topology.errors import CalendarError  # noqa: F401 - defined there, imported here as before

log = logging.getLogger(__name__)

#: Việt Nam's civil time; fixed offset, so local arithmetic never meets a DST gap.
VIETNAM_TZ = timezone(timedelta(hours=7), "ICT")

#: The lists a swap file may hold (see the module docstring); anything else is refused, so a typo or the old
#: format ("holidays": [...]) cannot be silently ignored.
SWAP_LISTS = ("days_off", "working_days", "removed")
_SWAP_KEYS = frozenset({"year", "status", "source", "_comment", "notes", *SWAP_LISTS})

_DAY = timedelta(days=1)


@lru_cache(maxsize=None)
def base_year(year: int) -> tuple[frozenset[date], frozenset[date]]:
    """The `holidays` package's calendar for one year: (days off, weekend days declared working)."""
    # Neighbour years too: a swap across New Year (off 31 Dec, worked on a January Saturday) is filed under one.
    vn = holidays_package.country_holidays("VN", years=(year - 1, year, year + 1))
    return (frozenset(d for d in vn if d.year == year),
            frozenset(d for d in vn.weekend_workdays if d.year == year))


@dataclass(frozen=True)
class WorkingCalendar:
    """The base calendar of every year plus the announced swaps of the years that have a swap file."""

    days_off: frozenset[date] = frozenset()
    working_days: frozenset[date] = frozenset()
    removed: frozenset[date] = frozenset()
    years: frozenset[int] = frozenset()  # years with a swap file
    # year -> (closed weekdays, open weekend days); a cache of values derived from the fields above.
    _by_year: dict[int, tuple[frozenset[date], frozenset[date]]] = field(
        default_factory=dict, compare=False, repr=False)

    # -- loading -------------------------------------------------------------------------------------------------
    @classmethod
    def from_documents(cls, documents: list[dict], names: list[str] | None = None) -> "WorkingCalendar":
        """Build from parsed holidays-<year>.json swap documents (`names` label them in errors)."""
        lists: dict[str, set[date]] = {key: set() for key in SWAP_LISTS}
        years: set[int] = set()
        for i, doc in enumerate(documents):
            name = names[i] if names else f"swap document {i + 1}"
            year, parsed = _parse_swap_document(doc, name)
            if year in years:
                raise CalendarError(f"{name}: a second swap file for {year}; keep one file per year")
            years.add(year)
            for key in SWAP_LISTS:
                lists[key].update(parsed[key])
        return cls(frozenset(lists["days_off"]), frozenset(lists["working_days"]), frozenset(lists["removed"]),
                   frozenset(years))

    @classmethod
    def load(cls, today: date | None = None) -> "WorkingCalendar":
        """Every holidays-*.json shipped in topology/data; warns once if this or next year has no swap file."""
        data = resources.files("topology").joinpath("data")
        files = sorted((f for f in data.iterdir() if f.name.startswith("holidays-") and f.name.endswith(".json")),
                       key=lambda f: f.name)
        docs = []
        for f in files:
            try:
                docs.append(json.loads(f.read_text(encoding="utf-8")))
            except ValueError as exc:
                raise CalendarError(f"topology/data/{f.name} is not valid JSON ({exc}); fix the file") from exc
        calendar = cls.from_documents(docs, [f"topology/data/{f.name}" for f in files])
        today = today or datetime.now(VIETNAM_TZ).date()
        missing = [y for y in (today.year, today.year + 1) if y not in calendar.years]
        if missing:
            log.warning("no holiday swap file for %s: counting the holidays package's calendar only, without the "
                        "government's swaps (add topology/data/holidays-%s.json once the notice is out)",
                        " and ".join(map(str, missing)), missing[-1])
        for year in range(today.year - 1, today.year + 2):
            calendar._year(year)  # computed at start-up rather than during the first decisions
        return calendar

    # -- days ----------------------------------------------------------------------------------------------------
    def _year(self, year: int) -> tuple[frozenset[date], frozenset[date]]:
        """(closed weekdays, open weekend days) of a year: base, minus `removed`, with the swaps applied."""
        cached = self._by_year.get(year)
        if cached is None:
            base_off, base_working = base_year(year)
            off = {d for d in base_off if d.year == year} - self.removed - self.working_days
            working = set(base_working) - self.removed - self.days_off
            off |= {d for d in self.days_off if d.year == year}
            working |= {d for d in self.working_days if d.year == year}
            cached = (frozenset(d for d in off if d.weekday() < 5),
                      frozenset(d for d in working if d.weekday() >= 5))
            self._by_year[year] = cached
        return cached

    def is_working_day(self, day: date) -> bool:
        closed_weekdays, open_weekend_days = self._year(day.year)
        if day.weekday() < 5:
            return day not in closed_weekdays
        return day in open_weekend_days

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


def _parse_swap_document(doc: dict, name: str) -> tuple[int, dict[str, frozenset[date]]]:
    """A swap file's year and its three lists of dates, checked; CalendarError naming the file otherwise."""
    if not isinstance(doc, dict) or not isinstance(doc.get("year"), int):
        raise CalendarError(f"{name}: needs an integer \"year\"; see topology/data/holidays-2026.json")
    unknown = sorted(set(doc) - _SWAP_KEYS)
    if unknown:
        raise CalendarError(f"{name}: unknown key {unknown[0]!r}; a swap file lists only {', '.join(SWAP_LISTS)}")
    year = doc["year"]
    parsed: dict[str, frozenset[date]] = {}
    for key in SWAP_LISTS:
        days = set()
        for entry in doc.get(key, ()):
            try:
                day = date.fromisoformat(entry["date"])
            except (TypeError, KeyError, ValueError):
                raise CalendarError(f"{name}: {key} entry {entry!r} needs \"date\": \"YYYY-MM-DD\"") from None
            if day.year != year:
                raise CalendarError(f"{name}: {key} has {day}, outside {year}; move it to holidays-{day.year}.json")
            days.add(day)
        parsed[key] = frozenset(days)
    weekdays = sorted(d for d in parsed["working_days"] if d.weekday() < 5)
    if weekdays:
        raise CalendarError(f"{name}: working_days has {weekdays[0]}, a weekday (working anyway); a holiday that is "
                            "worked after all goes under \"removed\"")
    clash = sorted((parsed["days_off"] & parsed["working_days"]) | (parsed["removed"] & (
        parsed["days_off"] | parsed["working_days"])))
    if clash:
        raise CalendarError(f"{name}: {clash[0]} is in two lists; keep it in one")
    return year, parsed


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
