"""Pre-2025 licence classes and their exchange into the 2025 classes (Law 36/2024/QH15 Art. 89), as data.

Why: "A1" and "B1" name different classes before and after 1 Jan 2025 (old B1 is a car licence, new B1 is for
three-wheelers; old A1 goes up to 175 cm3, new A1 to 125 cm3), and old codes such as A2 or B2 no longer exist. A
class code without its era is ambiguous, so a renewal is judged on the class it is exchanged INTO: that new class
decides whether a health certificate is needed, and it is what the issuance names. The table is
`topology/data/class-exchange-2025.json`; this module only applies it. Pure: no I/O after loading, no clock.

How an application's class is matched to the licence (the police record of held classes):
- the citizen applies for a class printed on the card ("B2", "B1", "A2"): it is the held class with that code;
- or for a 2025 class the exchange allows instead of the default ("C1" for an old B2): it is the held pre-2025
  class that can be exchanged into it;
- the era of a held class follows from its issue date: issued before 2025-01-01 = old. Only codes that exist in
  both eras (A1, B1, C, D) need the date; a code of one era only ("A2", "B2"; "A", "B") is of that era whatever
  the record says. A record without an issue date is read at face value (2025 meaning);
- an old class renews into the first new class of its row unless the citizen asked for another one of the row;
- not held and no held old class exchanges into it -> CLASS_NOT_HELD; held but without a 2025 class (A4, or a
  code missing from the table) -> CLASS_NOT_RENEWABLE (the province takes the case).
Before the police record arrives (or when it is not found) the applied codes are read at face value, the same way.

Validity of the OLD licence follows the old rules when the police record has no expiry (see the data file).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Iterable, Mapping

CLASS_NOT_HELD = "CLASS_NOT_HELD"  # equal to topology.rules.Reason members (StrEnum); no import: rules imports us
CLASS_NOT_RENEWABLE = "CLASS_NOT_RENEWABLE"
B1_AGE = "B1_AGE"  # validity_years marker: the old B1 age rule


@dataclass(frozen=True)
class OldClass:
    code: str
    label: str
    new_classes: tuple[str, ...]  # allowed on renewal, first = the default; empty: no 2025 class (not renewable)
    restrictions: tuple[str, ...]
    validity_years: int | str | None  # None: never expires; B1_AGE: the old B1 age rule


@dataclass(frozen=True)
class HeldClass:
    """One class on the police record of the licence."""

    code: str
    issued_on: date | None = None
    expires_on: date | None = None  # printed expiry; None: never expires, or not on the record


@dataclass(frozen=True)
class Renewal:
    """What renewing one applied class means."""

    applied: str
    held: str | None = None  # code of the held class it renews (None: not held, or the record is not in)
    old: bool = False  # the held (or applied) class is a pre-2025 class
    new_class: str | None = None  # the 2025 class issued; None: not held or not renewable
    restrictions: tuple[str, ...] = ()
    expires_on: date | None = None  # of the held class: printed, or by the old rules when the record has none
    finding: str | None = None  # CLASS_NOT_HELD | CLASS_NOT_RENEWABLE


@dataclass(frozen=True)
class ClassExchange:
    version: str
    new_classes_from: date
    old: Mapping[str, OldClass]
    new_codes: frozenset[str]  # the 2025 class set (from the rule set's class table)
    b1_until_age: Mapping[str, int]  # sex -> age
    b1_late_after_age: Mapping[str, int]
    b1_late_years: int

    def is_old(self, code: str, issued_on: date | None) -> bool:
        if code not in self.new_codes:
            return True  # A2, B2, FB2 ... (and unknown codes: not a 2025 class either)
        if code not in self.old:
            return False  # A, B, C1 ...
        return issued_on is not None and issued_on < self.new_classes_from

    def resolve(self, applied: Iterable[str], held: Mapping[str, HeldClass] | None,
                date_of_birth: date | None = None, sex: str | None = None) -> tuple[Renewal, ...]:
        """One Renewal per applied class. `held`: the licence's classes by code, None if the record is not in."""
        return tuple(self._one(code, held, date_of_birth, sex) for code in applied)

    def _one(self, code: str, held: Mapping[str, HeldClass] | None, born: date | None, sex: str | None) -> Renewal:
        if held is not None and code not in held:
            return self._chosen(code, held, born, sex)
        h = held[code] if held is not None else HeldClass(code)  # no record: face value, no issue date
        held_code = code if held is not None else None
        if not self.is_old(h.code, h.issued_on):
            return Renewal(code, held_code, False, code, (), h.expires_on)
        row = self.old.get(h.code)
        if row is None:  # an old code the table does not know (F)
            return Renewal(code, held_code, True, None, (), h.expires_on, CLASS_NOT_RENEWABLE)
        expires_on = h.expires_on or self.old_expiry(row, h.issued_on, born, sex)
        if not row.new_classes:  # A4: no 2025 class
            return Renewal(code, held_code, True, None, row.restrictions, expires_on, CLASS_NOT_RENEWABLE)
        return Renewal(code, held_code, True, row.new_classes[0], row.restrictions, expires_on)

    def _chosen(self, code: str, held: Mapping[str, HeldClass], born: date | None, sex: str | None) -> Renewal:
        """A 2025 class not on the record: the citizen's choice among the classes a held old class allows. Of several
        held old classes allowing it, the least restricted wins (held A1 and A2, "A" asked: A2's plain A, not A1's
        A under 175 cm3), then the code: the same answer on every replay."""
        def least_restricted(h: HeldClass) -> tuple[int, str]:
            row = self.old.get(h.code)
            return (len(row.restrictions) if row else 0, h.code)

        for h in sorted(held.values(), key=least_restricted):
            row = self.old.get(h.code)
            if row and code in row.new_classes and self.is_old(h.code, h.issued_on):
                return Renewal(code, h.code, True, code, row.restrictions,
                               h.expires_on or self.old_expiry(row, h.issued_on, born, sex))
        return Renewal(code, finding=CLASS_NOT_HELD)

    def old_expiry(self, row: OldClass, issued_on: date | None, born: date | None, sex: str | None) -> date | None:
        """Expiry of an old class by the old law, when the record has none. None: never, or not computable."""
        years = row.validity_years
        if years is None or issued_on is None:
            return None
        if years != B1_AGE:
            return _add_years(issued_on, int(years))
        if born is None or sex not in self.b1_until_age:
            return None
        if issued_on > _add_years(born, self.b1_late_after_age[sex]):
            return _add_years(issued_on, self.b1_late_years)
        return _add_years(born, self.b1_until_age[sex])

    def conclusions_in_2025_classes(self, conclusions: Mapping[str, bool]) -> dict[str, bool]:
        """A certificate's conclusions with codes of the old era only (B2, FC ...) read as their 2025 classes.

        Clinics conclude in 2025 classes since 2025 (Circular 36/2024/TT-BYT), so a code of both eras ("B1") on
        a certificate has its 2025 meaning; a conclusion on an old-only code counts for every class it exchanges
        into. Where two conclusions meet on one class, not fit wins."""
        out: dict[str, bool] = {}
        for code, fit in conclusions.items():
            row = self.old.get(code)
            targets = row.new_classes if (code not in self.new_codes and row and row.new_classes) else (code,)
            for target in targets:
                out[target] = out.get(target, True) and fit
        return out


def sex_from_cccd(cccd: str) -> str | None:
    """CCCD digit 4 = sex and century: even male, odd female (0/1 born 1900s, 2/3 2000s ...; domain.md)."""
    return ("female" if int(cccd[3]) % 2 else "male") if len(cccd) >= 4 and cccd[3].isdigit() else None


def parse_class_exchange(doc: dict, new_codes: Iterable[str]) -> ClassExchange:
    """Build the exchange from a parsed class-exchange-*.json; KeyError/ValueError/TypeError on malformed data."""
    new_codes = frozenset(new_codes)
    old = {}
    for code, row in doc["old_classes"].items():
        years = row["validity_years"]
        if not (years is None or years == B1_AGE or (isinstance(years, int) and years > 0)):
            raise ValueError(f"old class {code}: validity_years must be null, a positive number or {B1_AGE!r}")
        unknown = [c for c in row["new_classes"] if c not in new_codes]
        if unknown:
            raise ValueError(f"old class {code}: {unknown} are not 2025 classes")
        old[code] = OldClass(code, row.get("label", code), tuple(row["new_classes"]), tuple(row["restrictions"]),
                             years)
    b1 = doc["old_b1_validity"]
    return ClassExchange(
        version=doc["version"], new_classes_from=date.fromisoformat(doc["new_classes_from"]),
        old=MappingProxyType(old), new_codes=new_codes,
        b1_until_age=MappingProxyType({k: int(v) for k, v in b1["until_age"].items()}),
        b1_late_after_age=MappingProxyType({k: int(v) for k, v in b1["ten_years_if_issued_after_age"].items()}),
        b1_late_years=int(b1["years_if_issued_late"]))


def load_class_exchange(new_codes: Iterable[str], path: str | Path | None = None) -> ClassExchange:
    """The shipped class-exchange-2025.json (or `path`)."""
    if path is None:
        text = resources.files("topology").joinpath("data/class-exchange-2025.json").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return parse_class_exchange(json.loads(text), new_codes)


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February -> 28 February
        return day.replace(year=day.year + years, day=28)
