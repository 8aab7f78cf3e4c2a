"""The renewal rule set, loaded from dated data (topology/data/rules-*.json).

Why data: the law changes by date (certificate validity went from 6 to 12 months on 1 Jan 2025; classes were
renamed; fees move), and a case must be judged by the rules in force when it was submitted. So every rule carries
`effective_from`, and what it does to a case (REJECT, ESCALATE, AWAIT, WARN, OFF) is data too. The checks
themselves (how to tell that a licence is revoked) are code in `topology.decision`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from topology.calendar import WorkingCalendar, default_calendar
from topology.classes import ClassExchange, load_class_exchange
from topology.errors import RuleSetError  # noqa: F401 - defined there, imported here as before


class Reason(StrEnum):
    """Reason codes; equal to the plain strings (and to the symbols of the Avro ReasonCode enum)."""

    IDENTITY_MISMATCH = "IDENTITY_MISMATCH"
    PHONE_NOT_TIED = "PHONE_NOT_TIED"
    EXAM_MISSING = "EXAM_MISSING"
    EXAM_EXPIRED = "EXAM_EXPIRED"
    UNFIT = "UNFIT"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    PAYMENT_MISSING = "PAYMENT_MISSING"
    LICENCE_NOT_FOUND = "LICENCE_NOT_FOUND"
    LICENCE_REVOKED = "LICENCE_REVOKED"
    UNRESOLVED_VIOLATION = "UNRESOLVED_VIOLATION"
    ZERO_POINTS = "ZERO_POINTS"
    LICENCE_EXPIRED = "LICENCE_EXPIRED"
    IDENTITY_MISSING = "IDENTITY_MISSING"
    LICENCE_STATUS_MISSING = "LICENCE_STATUS_MISSING"
    APPLICATION_WITHDRAWN = "APPLICATION_WITHDRAWN"
    CLASS_NOT_HELD = "CLASS_NOT_HELD"
    NAME_OR_DOB_DIFFERS = "NAME_OR_DOB_DIFFERS"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    PAYMENT_INSUFFICIENT = "PAYMENT_INSUFFICIENT"
    OVERPAID = "OVERPAID"
    EXAM_WRONG_CLASS = "EXAM_WRONG_CLASS"
    FEE_QUOTE_DIFFERS = "FEE_QUOTE_DIFFERS"
    CLASS_NOT_RENEWABLE = "CLASS_NOT_RENEWABLE"


class Effect(StrEnum):
    """What a rule that fires does to the case."""

    REJECT = "REJECT"  # the case ends; a paid fee is refunded
    ESCALATE = "ESCALATE"  # a person at the province takes the case over
    AWAIT = "AWAIT"  # a fact may still arrive; timeouts apply
    WARN = "WARN"  # noted on the case, no effect on the outcome
    OFF = "OFF"  # not applied (a dated entry can switch a rule off)


@dataclass(frozen=True)
class Rule:
    code: Reason
    effect: Effect
    effective_from: date
    why: str = ""


@dataclass(frozen=True)
class LicenceClass:
    code: str
    validity_years: int | None  # None: never expires
    exam_required: bool
    health_group: int  # 1: A1, B1; 2: A, B; 3: C1 and above


@dataclass(frozen=True)
class Fee:
    service: str  # "renewal"
    channel: str  # "online"
    amount_vnd: int
    effective_from: date


@dataclass(frozen=True)
class RuleSet:
    """One version of the rules plus the calendar its working-day deadlines are counted on."""

    name: str
    version: str
    rules: tuple[Rule, ...]
    classes: Mapping[str, LicenceClass]
    unknown_class: LicenceClass
    exam_validity: tuple[tuple[date, int], ...]  # (signed from, months), ascending
    notify_after_working_days: int
    escalate_after_working_days: int
    theory_test_if_expired_less_than_months: int
    identity_warn_only_fields: frozenset[str]
    calendar: WorkingCalendar
    exchange: ClassExchange  # pre-2025 classes -> 2025 classes (topology/data/class-exchange-2025.json)
    certificate_clock_skew: timedelta  # a certificate signed later than its arrival + this is invalid
    fees: tuple[Fee, ...] = ()
    # in_force per date, computed once: the processor decides on every input, and the answer never changes
    _in_force: dict[date, Mapping[Reason, Rule]] = field(default_factory=dict, init=False,
                                                      compare=False, repr=False)

    def in_force(self, on: date) -> Mapping[Reason, Rule]:
        """Rules in force on a date, in declaration order: per code the latest entry not after `on`, minus OFF."""
        if on not in self._in_force:
            self._in_force[on] = MappingProxyType(self._rules_on(on))
        return self._in_force[on]

    def _rules_on(self, on: date) -> dict[Reason, Rule]:
        chosen: dict[Reason, Rule] = {}
        for rule in self.rules:
            if rule.effective_from <= on:
                current = chosen.get(rule.code)
                if current is None or rule.effective_from >= current.effective_from:
                    chosen[rule.code] = rule
        return {code: r for code, r in chosen.items() if r.effect is not Effect.OFF}

    def licence_class(self, code: str) -> LicenceClass:
        """The class table entry; an unknown (e.g. pre-2025) class gets the conservative default."""
        return self.classes.get(code) or LicenceClass(code, self.unknown_class.validity_years,
                                                      self.unknown_class.exam_required,
                                                      self.unknown_class.health_group)

    def fee_vnd(self, on: date, service: str = "renewal", channel: str = "online") -> int | None:
        """The fee in force on a date (the latest entry not after it), or None if the data has none."""
        dated = [f for f in self.fees if (f.service, f.channel) == (service, channel) and f.effective_from <= on]
        return max(dated, key=lambda f: f.effective_from).amount_vnd if dated else None

    def exam_validity_months(self, signed_on: date) -> int:
        """How long a certificate signed on that date is valid (6 months before 2025, 12 from 2025)."""
        months = self.exam_validity[0][1]
        for since, m in self.exam_validity:
            if since <= signed_on:
                months = m
        return months


def parse_rule_set(doc: dict, calendar: WorkingCalendar, exchange: ClassExchange | None = None) -> RuleSet:
    """Build a RuleSet from a parsed rules-*.json document, failing loudly on unknown codes or effects.
    `exchange`: the class-exchange table (default: the shipped one, checked against this set's 2025 classes)."""
    try:
        rules = tuple(
            Rule(Reason(r["code"]), Effect(r["outcome"]), date.fromisoformat(r["effective_from"]), r.get("why", ""))
            for r in doc["rules"])
        classes = {code: LicenceClass(code, c["validity_years"], bool(c["exam_required"]), int(c["health_group"]))
                   for code, c in doc["classes"].items()}
        u = doc["unknown_class"]
        validity = tuple(sorted((date.fromisoformat(v["signed_from"]), int(v["months"]))
                                for v in doc["exam_validity"]))
        timeouts = doc["timeouts"]
        fees = tuple(Fee(f["service"], f["channel"], int(f["amount_vnd"]), date.fromisoformat(f["effective_from"]))
                     for f in doc["fees"])
        return RuleSet(
            name=doc["name"], version=doc["version"], rules=rules, classes=MappingProxyType(classes),
            unknown_class=LicenceClass("?", u["validity_years"], bool(u["exam_required"]), int(u["health_group"])),
            exam_validity=validity,
            notify_after_working_days=int(timeouts["notify_missing_after_working_days"]),
            escalate_after_working_days=int(timeouts["escalate_after_working_days"]),
            theory_test_if_expired_less_than_months=int(
                doc["expired_licence"]["theory_test_if_expired_less_than_months"]),
            identity_warn_only_fields=frozenset(doc["identity_warn_only_fields"]),
            calendar=calendar, fees=fees,
            exchange=exchange or load_class_exchange(classes),
            certificate_clock_skew=timedelta(minutes=int(doc["certificate_clock_skew_minutes"])),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise RuleSetError(f"malformed rule set {doc.get('version', '?')}: {type(exc).__name__}: {exc}") from exc


def load_rule_set(path: str | Path | None = None, calendar: WorkingCalendar | None = None) -> RuleSet:
    """Load a rule set (default: the shipped rules-2025.json) with the shipped working-day calendar."""
    if path is None:
        text = resources.files("topology").joinpath("data/rules-2025.json").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return parse_rule_set(json.loads(text), calendar or default_calendar())
