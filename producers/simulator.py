"""The simulator: a province's day of renewal applications, with the pilot's failure modes, for demos and tests.

Two halves, kept apart on purpose:
- `make_plan(...)` is pure and deterministic: the same seed gives the same citizens, ids and events (times are
  relative to `start`), so a test can assert on it without a broker and the demo can reconcile what the case
  processor decided against what the plan expected (`Plan.expected`).
- `write_databases(plan, dir)` writes the population, licence and payment-ledger files the adapters read, and
  `publish(plan, publisher, rate=...)` puts the certificates, applications and payments on the bus.

Realism, roughly:
- CCCD = '0' + old province code of birth registration + sex/century digit + 2-digit birth year + 6 serial digits,
  consistent with the date of birth (schemas.validation checks it);
- residence provinces are weighted by population (2019 census, rounded, producers/data/population.csv: rough
  weights, good enough to make Hà Nội and Hồ Chí Minh City busy and Bắc Kạn quiet); 85% of people live in the
  province where their birth was registered;
- class mix: mostly B2/B and A1/A, some C/D and others; issue and expiry dates follow each class's validity
  (pre-2025 B2 10 years, C/D/E/FC 5 years: *old-law values, unconfirmed for the mapping*);
- health certificates mostly signed before the application (15% arrive after it), 5% amended (EDIT), 2% revoked
  and replaced (REVOKE then a new ADD);
- each application has at most one failure mode, drawn with the configured rates (`DEFAULT_RATES`); besides the
  pilot's failures, the cases a citizen must be able to trust the bus with: a fee under- or overpaid, a residence
  written with an old province code, a pre-2025 class (A2, or B1 as a car licence) to exchange.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import random
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from producers.adapters import payment
from producers.adapters.localdb import write_records
from producers.ids import derived_id
from producers.sdk import PendingDelivery, Publisher
from schemas import models, reference

from schemas.models import Event
from producers.errors import SimulationError  # noqa: F401 - defined there, imported here as before


# ---- the failure modes and what the case processor should decide --------------------------------------------
#: mode -> (outcome, reason codes the decision must list, warnings). Reasons are a set: a CCCD unknown to the
#: population database cannot have a phone tied to it either, so identity_mismatch also shows PHONE_NOT_TIED.
EXPECTED: dict[str | None, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    None: ("APPROVED", (), ()),
    "name_differs": ("APPROVED", (), ("NAME_OR_DOB_DIFFERS",)),
    "phone_not_tied": ("REJECTED", ("PHONE_NOT_TIED",), ()),
    "identity_mismatch": ("REJECTED", ("IDENTITY_MISMATCH", "PHONE_NOT_TIED"), ()),
    "unfit": ("REJECTED", ("UNFIT",), ()),
    "licence_revoked": ("REJECTED", ("LICENCE_REVOKED",), ()),
    "zero_points": ("REJECTED", ("ZERO_POINTS",), ()),
    "unresolved_violation": ("REJECTED", ("UNRESOLVED_VIOLATION",), ()),
    "licence_expired": ("ESCALATED", ("LICENCE_EXPIRED",), ()),
    "licence_not_found": ("ESCALATED", ("LICENCE_NOT_FOUND",), ()),
    "clinic_not_integrated": ("AWAITING", ("EXAM_MISSING",), ()),
    "payment_failed": ("AWAITING", ("PAYMENT_FAILED",), ()),
    # Cases a citizen can trust the bus with (issue 10): each must come out right, not in the DLQ.
    "underpaid": ("AWAITING", ("PAYMENT_INSUFFICIENT",), ()),  # 100,000 of 135,000: waits for the rest
    "overpaid": ("APPROVED", (), ("OVERPAID",)),  # 1,350,000: approved, the excess refunded
    "old_province_code": ("APPROVED", (), ()),  # residence written with a pre-July-2025 code
    "old_class": ("APPROVED", (), ()),  # a pre-2025 A2 (-> A, no exam) or B1 car licence (-> B, exam)
}
FAILURE_MODES = tuple(m for m in EXPECTED if m is not None)

#: Default rates per application (about 30% fail somehow: the pilot's problems, scaled down to a working system).
DEFAULT_RATES: dict[str, float] = {
    "phone_not_tied": 0.05, "identity_mismatch": 0.03, "name_differs": 0.02, "clinic_not_integrated": 0.06,
    "unfit": 0.01, "payment_failed": 0.04, "licence_revoked": 0.01, "zero_points": 0.01,
    "unresolved_violation": 0.03, "licence_expired": 0.03, "licence_not_found": 0.02,
    "underpaid": 0.02, "overpaid": 0.02, "old_province_code": 0.03, "old_class": 0.03,
}
#: What the citizen pays in the payment modes (the fee quoted is RENEWAL_FEE_VND).
UNDERPAID_VND, OVERPAID_VND = 100_000, 1_350_000
#: Pre-2025 classes of the old_class mode -> the class the clinic examines for (the 2025 class it renews into;
#: None: no certificate needed). Old B1 is a car licence (-> B, health group 2), old A2 a motorbike one (-> A).
OLD_CLASS_EXAM = {"A2": None, "B1": "B"}

# ---- classes ---------------------------------------------------------------------------------------------------
CLASS_MIX = (("B2", 33), ("A1", 22), ("B", 9), ("C", 9), ("A", 6), ("D", 5), ("FC", 4), ("B1", 3), ("C1", 3),
             ("E", 3), ("D2", 3))
#: Validity of classes issued before 2025 (old law), for classes the reference data leaves open.
OLD_VALIDITY_YEARS = {"B2": 10, "C": 5, "D": 5, "E": 5, "FC": 5}
#: Health group examined for pre-2025 classes (reference data leaves it open): cars 2, heavier 3.
OLD_HEALTH_GROUP = {"B2": 2, "E": 3, "FC": 3}
EXPIRING = ("B2", "C", "D", "E", "FC")  # classes whose old-law expiry falls due now
RENEWAL_FEE_VND = payment.RENEWAL_FEE_VND

_FAMILY = (("Nguyễn", 38), ("Trần", 11), ("Lê", 9), ("Phạm", 7), ("Hoàng", 5), ("Huỳnh", 4), ("Phan", 4),
           ("Vũ", 4), ("Võ", 3), ("Đặng", 2), ("Bùi", 2), ("Đỗ", 2), ("Hồ", 2), ("Ngô", 2), ("Dương", 1), ("Lý", 1))
_MIDDLE = {0: ("Văn", "Đức", "Minh", "Quang", "Hữu", "Thanh", "Công"),
           1: ("Thị", "Ngọc", "Thu", "Thanh", "Minh", "Kim", "Mai")}
_GIVEN = {0: ("An", "Bình", "Cường", "Dũng", "Hải", "Hùng", "Khánh", "Long", "Nam", "Phong", "Quân", "Sơn",
              "Thắng", "Trung", "Tuấn", "Việt"),
          1: ("Anh", "Chi", "Dung", "Hà", "Hạnh", "Hoa", "Hương", "Lan", "Linh", "Mai", "Ngọc", "Nhung", "Phương",
              "Thảo", "Trang", "Yến")}
_WARDS = ("Phường Ba Đình", "Phường Hoàn Kiếm", "Phường Bến Thành", "Phường Sài Gòn", "Xã Tân Lập", "Xã Đông Hòa",
          "Phường Hòa Bình", "Xã Thanh Xuân", "Phường Trung Tâm", "Xã Phú Mỹ")


# ---- plan data -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScheduledEvent:
    at: dt.datetime  # occurred_at; the plan is published in this order
    event: Event


@dataclass(frozen=True)
class ExpectedOutcome:
    """What the case processor should decide for one application (for reconciliation)."""

    application_id: str
    cccd: str
    province: str  # current code the case routes to
    classes: tuple[str, ...]
    failure: str | None
    outcome: str  # APPROVED | REJECTED | ESCALATED | AWAITING
    reasons: tuple[str, ...]
    warnings: tuple[str, ...]
    refund_expected: bool

    def as_dict(self) -> dict[str, Any]:
        return {"application_id": self.application_id, "cccd": self.cccd, "province": self.province,
                "classes": list(self.classes), "failure": self.failure, "outcome": self.outcome,
                "reasons": list(self.reasons), "warnings": list(self.warnings),
                "refund_expected": self.refund_expected}


@dataclass
class Plan:
    seed: int
    start: dt.datetime
    provinces: tuple[str, ...]
    events: list[ScheduledEvent]
    expected: list[ExpectedOutcome]
    identity_records: list[dict[str, Any]]
    police_records: list[dict[str, Any]]
    payments: list[models.PaymentTransaction] = field(default_factory=list)

    def counts(self) -> dict[str, Counter]:
        """Summary: outcomes, failure modes, provinces and event types, each as a Counter."""
        return {
            "outcome": Counter(e.outcome for e in self.expected),
            "failure": Counter(e.failure or "none" for e in self.expected),
            "province": Counter(e.province for e in self.expected),
            "event": Counter(s.event.avro_name.rsplit(".", 1)[1] for s in self.events),
        }


# ---- inputs ----------------------------------------------------------------------------------------------------
def parse_provinces(text: str) -> tuple[str, ...]:
    """Current province codes from '01,79'; an old (pre-July-2025) code is read as the province it merged into,
    as `gplx-bus subscribe` does (`old_province_codes` names them for the user)."""
    typed = [c.strip().zfill(2) for c in text.split(",") if c.strip()]
    if not typed:
        raise SimulationError("--provinces needs at least one current province code, e.g. 01,79")
    for code in typed:
        if not (reference.is_current_province_code(code) or reference.is_old_province_code(code)):
            raise SimulationError(f"'{code}' is not a province code: a current one (01 Hà Nội ... 96 Cà Mau) or an "
                                  f"old pre-July-2025 one")
    return tuple(dict.fromkeys(reference.current_code_of(code) for code in typed))


def old_province_codes(text: str) -> list[str]:
    """'02 Hà Giang → 08 Tuyên Quang' for each old code in `text` (valid per `parse_provinces`) read as another."""
    current = reference.current_provinces()
    return [f"{code} {reference.provinces()[code].old_name} → {reference.current_code_of(code)} "
            f"{current[reference.current_code_of(code)]}"
            for code in dict.fromkeys(c.strip().zfill(2) for c in text.split(",") if c.strip())
            if not reference.is_current_province_code(code)]


def parse_failure_rates(text: str | None) -> dict[str, float]:
    """'phone_not_tied=0.1,payment_failed=0' over DEFAULT_RATES; the rates must add up to at most 1."""
    rates = dict(DEFAULT_RATES)
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        name, _, value = part.partition("=")
        name = name.strip().replace("-", "_")
        if name not in FAILURE_MODES:
            raise SimulationError(f"unknown failure mode '{name}'; one of {', '.join(FAILURE_MODES)}")
        try:
            rates[name] = float(value)
        except ValueError:
            raise SimulationError(f"failure rate for {name} must be a number between 0 and 1") from None
        if not 0 <= rates[name] <= 1:
            raise SimulationError(f"failure rate for {name} must be between 0 and 1")
    if sum(rates.values()) > 1 + 1e-9:
        raise SimulationError(f"failure rates add up to {sum(rates.values()):.2f}; at most 1 (one mode per case)")
    return rates


def population_weights() -> dict[str, int]:
    """Old province code -> population in thousands (2019 census, rounded; rough weights)."""
    text = resources.files("producers").joinpath("data/population.csv").read_text(encoding="utf-8")
    return {r["old_code"]: int(r["population_thousands"]) for r in csv.DictReader(io.StringIO(text))}


# ---- the plan --------------------------------------------------------------------------------------------------
def make_plan(provinces: str | tuple[str, ...], applications: int, seed: int, *, start: dt.datetime | None = None,
              failure_rates: dict[str, float] | None = None) -> Plan:
    """The whole simulated day, pure and deterministic for (provinces, seed, start, rates).

    Application i is the same person and case whatever `applications` is (its random stream is seeded by
    (seed, i)), so a bigger run extends a smaller one.
    """
    codes = parse_provinces(provinces) if isinstance(provinces, str) else parse_provinces(",".join(provinces))
    if applications < 0:
        raise SimulationError("--applications must not be negative")
    rates = dict(DEFAULT_RATES if failure_rates is None else failure_rates)
    start = (start or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc).replace(microsecond=0)
    world = _World(codes)
    plan = Plan(seed, start, codes, [], [], [], [])
    used_cccd: set[str] = set()
    for i in range(applications):
        _application(plan, world, random.Random(f"{seed}:{i}"), seed, i, rates, used_cccd)
    plan.events.sort(key=lambda s: (s.at, s.event.event_id))
    return plan


class _World:
    """Population weights and the old->current province map, computed once per plan."""

    def __init__(self, codes: tuple[str, ...]) -> None:
        self.population = population_weights()
        self.provinces = reference.provinces()
        self.residence = list(codes)
        self.residence_weights = [sum(w for old, w in self.population.items()
                                      if self.provinces[old].new_code == c) for c in codes]
        self.all_old = sorted(self.population)
        self.all_old_weights = [self.population[o] for o in self.all_old]

    def old_codes_of(self, current: str) -> list[str]:
        return [o for o in self.all_old if self.provinces[o].new_code == current]


def _pick(rng: random.Random, weighted) -> Any:
    items, weights = zip(*weighted)
    return rng.choices(items, weights)[0]


def _failure(rng: random.Random, rates: dict[str, float]) -> str | None:
    roll, acc = rng.random(), 0.0
    for mode in FAILURE_MODES:
        acc += rates.get(mode, 0.0)
        if roll < acc:
            return mode
    return None


def _application(plan: Plan, world: _World, rng: random.Random, seed: int, i: int, rates: dict[str, float],
                 used_cccd: set[str]) -> None:
    failure = _failure(rng, rates)
    residence = rng.choices(world.residence, world.residence_weights)[0]
    local = world.old_codes_of(residence)
    if rng.random() < 0.85:
        birth_old = rng.choices(local, [world.population[o] for o in local])[0]
    else:
        birth_old = rng.choices(world.all_old, world.all_old_weights)[0]

    applied_at = plan.start - dt.timedelta(seconds=rng.randint(60, 8 * 3600))
    applied_on = applied_at.date()
    sex = rng.randint(0, 1)
    born = applied_on - dt.timedelta(days=rng.randint(20 * 365 + 5, 68 * 365))
    cccd = _cccd(rng, birth_old, sex, born, used_cccd)
    name = _name(rng, sex)
    phone = "0" + rng.choice("35789") + f"{rng.randint(0, 99_999_999):08d}"

    if failure == "old_class":
        cls, issued_on, expires_on = _old_class(rng, applied_on)
        exam_class = OLD_CLASS_EXAM[cls]
    else:
        cls = _class_for(rng, failure)
        issued_on, expires_on = _licence_dates(rng, cls, applied_on, expired=failure == "licence_expired")
        exam_class = cls
    licence_number = f"{rng.choice(local)}{rng.randint(0, 9_999_999_999):010d}"
    application_id = f"APP-{seed}-{i:06d}"
    src_portal = models.Source(system="portal", instance="dichvucong.gov.vn")
    post = rng.random() < 0.6
    ward = rng.choice(_WARDS)
    application = models.ApplicationSubmitted(
        event_id=derived_id("sim-application", seed, i), occurred_at=applied_at, source=src_portal,
        application_id=application_id, cccd=cccd,
        full_name=_differing(name) if failure == "name_differs" else name,
        date_of_birth=born, phone=phone, licence_number=licence_number, classes=[cls],
        residence_province=_old_code(rng, world, residence) if failure == "old_province_code" else residence,
        residence_ward=ward, delivery_method="POST" if post else "PICKUP",
        postal_address=f"Số {rng.randint(1, 300)}, {ward}, {reference.current_provinces()[residence]}" if post
        else None, fee_quoted_vnd=RENEWAL_FEE_VND)
    plan.events.append(ScheduledEvent(applied_at, application))

    if (exam_class and reference.licence_classes()[exam_class].needs_health_certificate
            and failure != "clinic_not_integrated"):
        _certificates(plan, rng, seed, i, cccd, exam_class, local, applied_at, fit=failure != "unfit")

    paid_at = min(applied_at + dt.timedelta(minutes=rng.randint(1, 20)), plan.start)
    tx = payment.payment_transaction(
        application_id=application_id, cccd=cccd, occurred_at=paid_at,
        amount_vnd={"underpaid": UNDERPAID_VND, "overpaid": OVERPAID_VND}.get(failure, RENEWAL_FEE_VND),
        failure_reason="Ngân hàng từ chối giao dịch (insufficient funds)" if failure == "payment_failed" else None)
    plan.payments.append(tx)
    plan.events.append(ScheduledEvent(paid_at, tx))

    if failure != "identity_mismatch":
        other_phone = "0" + rng.choice("35789") + f"{rng.randint(0, 99_999_999):08d}"
        plan.identity_records.append({"cccd": cccd, "full_name": name, "date_of_birth": born.isoformat(),
                                      "sex": ("MALE", "FEMALE")[sex],
                                      "phones": [other_phone if failure == "phone_not_tied" else phone]})
    if failure != "licence_not_found":
        plan.police_records.append({
            "cccd": cccd, "licence_number": licence_number,
            "classes": [{"licence_class": cls, "issued_on": issued_on.isoformat(),
                         "expires_on": expires_on.isoformat() if expires_on else None}],
            "revoked": failure == "licence_revoked",
            "unresolved_violations": rng.randint(1, 3) if failure == "unresolved_violation" else 0,
            "point_balance": 0 if failure == "zero_points" else rng.choice((12, 12, 12, 12, 10, 9, 6)),
        })
    outcome, reasons, warnings = EXPECTED[failure]
    refund = outcome == "REJECTED" or failure == "overpaid"  # a rejection refunds the fee; an overpayment its excess
    plan.expected.append(ExpectedOutcome(application_id, cccd, residence, (cls,), failure, outcome, reasons,
                                         warnings, refund_expected=refund))


def _old_code(rng: random.Random, world: _World, residence: str) -> str:
    """A pre-July-2025 code of a province merged into `residence` (itself where nothing merged into it)."""
    others = [o for o in world.old_codes_of(residence) if o != residence]
    return rng.choice(others) if others else residence


def _old_class(rng: random.Random, applied_on: dt.date) -> tuple[str, dt.date, dt.date | None]:
    """A class printed before 2025 (A2, or B1 = a car licence then): issued before 2025; old A2 never expires, the
    old B1 card still valid (its age-based end lies ahead)."""
    cls = rng.choice(sorted(OLD_CLASS_EXAM))
    issued = dt.date(2024, 12, 31) - dt.timedelta(days=rng.randint(30, 20 * 365))
    return cls, issued, None if cls == "A2" else applied_on + dt.timedelta(days=rng.randint(180, 3000))


def _cccd(rng: random.Random, old_code: str, sex: int, born: dt.date, used: set[str]) -> str:
    digit = (born.year - 1900) // 100 * 2 + sex
    while True:
        cccd = f"0{old_code}{digit}{born.year % 100:02d}{rng.randint(0, 999_999):06d}"
        if cccd not in used:
            used.add(cccd)
            return cccd


def _name(rng: random.Random, sex: int) -> str:
    return f"{_pick(rng, _FAMILY)} {rng.choice(_MIDDLE[sex])} {rng.choice(_GIVEN[sex])}"


def _without_diacritics(name: str) -> str:
    """How a name often arrives from a form without Vietnamese input: 'Nguyễn Văn Đức' -> 'Nguyen Van Duc'."""
    decomposed = unicodedata.normalize("NFD", name.replace("Đ", "D").replace("đ", "d"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _differing(name: str) -> str:
    """The name as the form had it, differing from the register's: without its diacritics, or, for a name that has
    none ('Phan Minh Nhung': the soak met 4 in 18,000 cases, planned a warning the facts did not show), without its
    middle name."""
    plain = _without_diacritics(name)
    if plain != name:
        return plain
    parts = name.split()
    return " ".join([parts[0], parts[-1]]) if len(parts) > 2 else name + " Thị"


def _class_for(rng: random.Random, failure: str | None) -> str:
    if failure == "licence_expired":
        return _pick(rng, [(c, w) for c, w in CLASS_MIX if c in EXPIRING])
    if failure in ("clinic_not_integrated", "unfit"):
        return _pick(rng, [(c, w) for c, w in CLASS_MIX if reference.licence_classes()[c].needs_health_certificate])
    return _pick(rng, CLASS_MIX)


def _licence_dates(rng: random.Random, cls: str, applied_on: dt.date, *, expired: bool) -> tuple[dt.date, dt.date | None]:
    """(issued_on, expires_on) consistent with the class's validity and the era it was issued in."""
    info = reference.licence_classes()[cls]
    years = OLD_VALIDITY_YEARS.get(cls) if cls in EXPIRING else info.validity_years
    if cls in EXPIRING:
        # Old-law licences falling due: expiry within the next six months (or, for the expired mode, past).
        offset = -rng.randint(1, 500) if expired else rng.randint(1, 180)
        expires = applied_on + dt.timedelta(days=offset)
        return _years_before(expires, years), expires
    era_start = dt.date(2025, 1, 1)
    if cls == "A1" or applied_on <= era_start + dt.timedelta(days=31):
        issued = applied_on - dt.timedelta(days=rng.randint(400, 25 * 365))  # A1 cards: any time since 1995
    else:
        # 2025-set class: issued since 2025; renewing it now replaces a lost or damaged card.
        issued = era_start + dt.timedelta(days=rng.randint(0, (applied_on - era_start).days - 30))
    return issued, (_years_before(issued, -years) if years else None)


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _certificates(plan: Plan, rng: random.Random, seed: int, i: int, cccd: str, cls: str, local: list[str],
                  applied_at: dt.datetime, *, fit: bool) -> None:
    """ADD (85% before the application), sometimes EDIT, sometimes REVOKE followed by a replacement ADD."""
    clinic = f"BV{rng.choice(local)}{rng.randint(1, 3):02d}"
    group = reference.licence_classes()[cls].health_group or OLD_HEALTH_GROUP.get(cls, 3)
    if rng.random() < 0.85:
        signed = applied_at - dt.timedelta(minutes=rng.randint(24 * 60, 90 * 24 * 60))
    else:
        signed = min(applied_at + dt.timedelta(minutes=rng.randint(10, 120)), plan.start)
    roll = rng.random()

    def cert(number: str, kind: str, at: dt.datetime, conclusions: list[dict]) -> models.HealthCertificate:
        body = f"{number}|{kind}|{cccd}|{cls}|{at.isoformat()}".encode()
        signature = hashlib.sha256(clinic.encode() + b"|" + body).digest()  # stands in for the clinic's signature
        return models.HealthCertificate(
            event_id=derived_id("sim-certificate", seed, i, number, kind), occurred_at=at,
            source=models.Source(system="clinic", instance=clinic), certificate_number=number, version_kind=kind,
            cccd=cccd, clinic_code=clinic, health_group=group, requested_class=cls, conclusions=conclusions,
            signed_at=at, doctor=f"BS. {_name(rng, rng.randint(0, 1))}", signature=signature)

    verdict = [{"licence_class": cls, "fit": fit}]
    serial = rng.randint(1, 99_000)
    number = f"{serial:05d}/GKSKLX/{clinic}/{signed.year % 100:02d}"
    plan.events.append(ScheduledEvent(signed, cert(number, "ADD", signed, verdict)))
    if roll < 0.05:  # amended a day later (or within the hour when it came after the application)
        later = min(signed + dt.timedelta(hours=1 if signed > applied_at else 24), plan.start)
        plan.events.append(ScheduledEvent(later, cert(number, "EDIT", later, verdict)))
    elif roll < 0.07 and signed < applied_at - dt.timedelta(days=2):  # revoked, and a new exam taken
        revoked_at = signed + dt.timedelta(hours=2)
        plan.events.append(ScheduledEvent(revoked_at, cert(number, "REVOKE", revoked_at, [])))
        again = revoked_at + dt.timedelta(hours=20)
        renewed = f"{serial + 1:05d}/GKSKLX/{clinic}/{again.year % 100:02d}"
        plan.events.append(ScheduledEvent(again, cert(renewed, "ADD", again, verdict)))


# ---- side effects: databases and publishing ------------------------------------------------------------------
def write_databases(plan: Plan, data_dir: str | Path) -> dict[str, Path]:
    """Write (merging) the identity and police databases and the payment ledger the adapters read."""
    from producers.adapters.runner import IDENTITY_DB, PAYMENT_LEDGER, POLICE_DB

    data_dir = Path(data_dir)
    paths = {"identity": data_dir / IDENTITY_DB, "police": data_dir / POLICE_DB,
             "payments": data_dir / PAYMENT_LEDGER}
    write_records(paths["identity"], plan.identity_records)
    write_records(paths["police"], plan.police_records)
    ledger = payment.PaymentLedger(paths["payments"])
    for tx in plan.payments:
        if ledger.payment(tx.transaction_id) is None:
            ledger.record_payment(tx)
    return paths


@dataclass
class PublishReport:
    published: Counter
    seconds: float

    @property
    def total(self) -> int:
        return sum(self.published.values())


def publish(plan: Plan, publisher: Publisher, *, rate: float = 0.0,
            on_progress: Callable[[int], None] | None = None, check_every: int = 500) -> PublishReport:
    """Publish the plan's events in time order, at `rate` events/s (0: as fast as possible).

    Acknowledgements are checked every `check_every` events, so a broken broker stops the run early with a
    DeliveryError instead of after the whole day was queued.
    """
    started = time.monotonic()
    pending: list[PendingDelivery] = []
    published: Counter = Counter()
    for n, scheduled in enumerate(plan.events, start=1):
        if rate > 0:
            delay = started + (n - 1) / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing the load, not synchronising with anything
        pending.append(publisher.send(scheduled.event))
        published[scheduled.event.avro_name.rsplit(".", 1)[1]] += 1
        if len(pending) >= check_every:
            _settle(pending)
        if on_progress:
            on_progress(n)
    publisher.flush()
    _settle(pending)
    return PublishReport(published, round(time.monotonic() - started, 3))


def _settle(pending: list[PendingDelivery]) -> None:
    try:
        for p in pending:
            p.result()
    finally:
        pending.clear()

