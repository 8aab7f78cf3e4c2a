"""Reference data the contracts validate against: provinces (old and current codes) and licence classes.

The facts live in CSV files beside this module (package data), not in code, because they change by decree:
63 provinces became 34 on 1 July 2025 (Resolution 202/2025/QH15) and the licence classes changed on
1 January 2025 (Law 36/2024/QH15). Health groups and validity of pre-2025 classes are unconfirmed and left empty.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class Province:
    """One pre-July-2025 province and the current unit it merged into."""

    old_code: str  # 2 digits, still printed in CCCD numbers, licences and health records
    old_name: str
    new_code: str  # 2 digits, what cases route by
    new_name: str


@dataclass(frozen=True)
class LicenceClass:
    """A driving-licence class (hạng GPLX)."""

    code: str
    pre_2025: bool  # issued only before 1 Jan 2025; still valid to its printed expiry
    health_group: int | None  # 1, 2 or 3 (Circular 36/2024/TT-BYT); None where unconfirmed (pre-2025 classes)
    validity_years: int | None  # None: never expires (A1, A, B1) or unconfirmed (pre-2025)
    needs_health_certificate: bool


def _read_csv(name: str) -> list[dict[str, str]]:
    text = resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


@cache
def provinces() -> dict[str, Province]:
    """Every old 2-digit province code -> its Province (63 entries)."""
    return {row["old_code"]: Province(**row) for row in _read_csv("provinces.csv")}


@cache
def current_provinces() -> dict[str, str]:
    """Current 2-digit province code -> name (34 entries)."""
    return {p.new_code: p.new_name for p in provinces().values()}


def is_old_province_code(code: str) -> bool:
    return code in provinces()


def is_current_province_code(code: str) -> bool:
    return code in current_provinces()


def current_code_for(old_code: str) -> str:
    """Map an old code (from a CCCD, licence or clinic record) to the current province code.

    Old and current codes overlap but do not mean the same unit (old 44 is Quảng Bình, current 44 is Quảng Trị),
    so callers must know which kind of code they hold; this function only accepts old codes.
    """
    try:
        return provinces()[old_code].new_code
    except KeyError:
        raise KeyError(f"not an old province code: {old_code!r}") from None


def current_code_of(code: str) -> str:
    """The current province of a code a citizen may hold, old or current (e.g. a residence typed on the portal).

    A 2-digit code like "01" or "44" is both an old and a current code. It is read as the current code when it is
    one, else mapped as an old code. This is safe because in provinces.csv every old code that is also a current
    code maps to itself (old 44 Quảng Bình merged into current 44 Quảng Trị), so both readings route to the same
    province (tests/unit/test_decisions_trust.py checks this on the data).
    """
    return code if is_current_province_code(code) else current_code_for(code)


@cache
def licence_classes() -> dict[str, LicenceClass]:
    """Every known licence class code -> LicenceClass (2025 set and pre-2025 classes)."""
    out = {}
    for row in _read_csv("licence_classes.csv"):
        out[row["code"]] = LicenceClass(
            code=row["code"],
            pre_2025=row["pre_2025"] == "true",
            health_group=int(row["health_group"]) if row["health_group"] else None,
            validity_years=int(row["validity_years"]) if row["validity_years"] else None,
            needs_health_certificate=row["needs_health_certificate"] == "true",
        )
    return out


def classes_2025() -> list[str]:
    return [c.code for c in licence_classes().values() if not c.pre_2025]


def classes_pre_2025() -> list[str]:
    return [c.code for c in licence_classes().values() if c.pre_2025]
