"""Which province topic a subscriber reads, from the code a provincial officer types.

Why accept old codes: licences, CCCD numbers and most provincial systems still carry the 63 pre-July-2025 codes
(Resolution 202/2025/QH15 merged them into 34). An officer of old Hà Giang (02) types 02; the cases now live on
Tuyên Quang's topic (08), and the subscriber says so instead of failing.

Where a code is both an old and a current code (44: old Quảng Bình, current Quảng Trị), the current meaning wins.
That is safe for routing: in the reference data every such old code merged into the current unit with the same
code, so both readings lead to the same topic (a unit test pins this).
"""
from __future__ import annotations

from dataclasses import dataclass

from schemas import reference

from consumers.errors import UnknownProvince  # noqa: F401 - defined there, imported here as before


@dataclass(frozen=True)
class ProvinceChoice:
    """The current province to subscribe to, and the old code the user typed if it was one."""

    code: str  # current code: the topic is cases.province.<code>
    name: str
    typed: str
    old_name: str | None = None  # set when `typed` was an old code of another unit

    def describe(self) -> str:
        """One line for the user, e.g. '02 Hà Giang → 08 Tuyên Quang' or '01 Hà Nội'."""
        if self.old_name is None:
            return f"{self.code} {self.name}"
        return f"{self.typed} {self.old_name} → {self.code} {self.name}"


def resolve(code: str) -> ProvinceChoice:
    """Current code -> itself; old code -> the current unit it merged into; anything else -> UnknownProvince."""
    typed = code.strip()
    if typed.isdigit() and len(typed) == 1:
        typed = "0" + typed  # "1" means "01"; codes are always written with two digits
    current = reference.current_provinces()
    if typed in current:
        return ProvinceChoice(typed, current[typed], typed)
    if reference.is_old_province_code(typed):
        old = reference.provinces()[typed]
        return ProvinceChoice(old.new_code, old.new_name, typed, old_name=old.old_name)
    raise UnknownProvince(f"unknown province code {code!r}: use a current 2-digit code (01 Hà Nội ... 96 Cà Mau, "
                          f"34 since 1 July 2025) or an old pre-2025 code; `gplx-bus topics list` shows the topics")
