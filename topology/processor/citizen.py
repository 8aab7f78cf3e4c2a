"""Everything the processor keeps about one citizen (key: cccd): typed dataclasses, JSON only at the table boundary.

Why per citizen, not per case: health certificates usually arrive *before* the application (kept 12 months), and a
payment may arrive before the application it pays for.

Why JSON in the table: the changelog must carry it, a replay must rebuild it, and an SRE must be able to read it
with kcat. The worker converts once per input: `from_json` on what the table holds, `to_json` on what it writes
back; between the two, the assembler works on the dataclasses below (field names = the JSON keys).

Versions: `to_json` writes `"version": STATE_VERSION`. A state without it was written before this module was typed
(version 1: the same keys, timestamps as text, "" for a payment's unknown time) and loads as it is; a state of
before every payment was kept (one `payment` per case) is upgraded on load (`_upgrade`). A stored sample of each
is loaded by the tests (tests/data/recorded-day).
"""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Callable

from topology.decision import Application, CaseFacts, CertificateOnFile, IdentityResult, LicenceRecord, Payment

STATE_VERSION = 2

# A certificate is valid 12 months from signing. It is kept 6 months longer so that a citizen who applies with a
# lapsed one is told EXAM_EXPIRED ("your exam is too old") rather than EXAM_MISSING ("we never got it").
CERTIFICATE_KEEP = timedelta(days=366 + 183)


@dataclass
class Certificate:
    """The latest version of one health certificate (an EDIT replaces the ADD; a REVOKE leaves a tombstone)."""

    signed_at: datetime
    health_group: int
    conclusions: dict[str, bool]  # class -> fit
    rank: int  # ADD 1, EDIT 2: which version replaces which
    revoked: bool = False


@dataclass
class ApplicationRecord:
    application_id: str
    cccd: str
    province: str  # current code: routes the case
    classes: list[str]
    submitted_at: datetime
    licence_number: str
    full_name: str
    date_of_birth: date
    phone: str
    delivery_method: str
    postal_address: str | None
    fee_quoted_vnd: int | None
    residence_province: str | None = None  # as the citizen typed it (None: a state from before it was kept)
    notice_due_at: datetime | None = None  # set at the first evaluation
    decision_due_at: datetime | None = None


@dataclass
class IdentityRecordData:
    """The CCCD record's own data, which the new licence prints (None: an older adapter did not send it)."""

    full_name: str | None = None
    sex: str | None = None
    date_of_birth: date | None = None


@dataclass
class IdentityAnswer:
    match: bool
    phone_tied: bool
    mismatched_fields: list[str]
    record: IdentityRecordData | None = None  # None: a state from before the record was kept


@dataclass
class LicenceAnswer:
    found: bool
    revoked: bool
    unresolved_violations: int
    point_balance: int
    classes: dict[str, date | None]  # class -> expires on (None: never)
    issued_on: dict[str, date] = field(default_factory=dict)  # empty: a state from before issue dates were kept


@dataclass
class PaymentRecord:
    transaction_id: str
    status: str  # PAID | FAILED | REFUNDED | UNKNOWN
    amount_vnd: int
    gateway_reference: str | None
    at: datetime | None  # None: kept before payment times were (refunded first: the latest are refunded first)


@dataclass
class Fee:
    """What a decided case owes and keeps of the money it holds (see assembler._refund)."""

    owed: int
    keep: int
    refunded_before: int


@dataclass
class Refund:
    transaction_id: str
    gateway_reference: str | None
    amount_vnd: int
    reasons: list[str]


@dataclass
class EarlyAnswers:
    """What reached us about a case before its application did (possible when topics are replayed)."""

    identity: IdentityAnswer | None = None
    licence: LicenceAnswer | None = None
    withdrawn: bool = False


@dataclass
class Case:
    case_id: str
    application: ApplicationRecord
    identity: IdentityAnswer | None = None
    licence: LicenceAnswer | None = None
    payments: dict[str, PaymentRecord] = field(default_factory=dict)  # by transaction id
    withdrawn: bool = False
    status: str = "OPEN"  # OPEN -> AWAITING (notice sent) -> APPROVED | REJECTED | ESCALATED
    final: bool = False
    missing: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rule_set_version: str = ""
    # output kind -> (input position that produced it, its time); in order of emission: a replay re-sends in it
    emitted: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    fee: Fee | None = None  # set when decided
    refunds: dict[str, Refund] = field(default_factory=dict)  # refund output kind -> what it refunds (kept: a
    # replay re-sends it identically)
    clock: datetime | None = None  # the latest time of the case's inputs
    notified: list[str] | None = None  # what the 2-working-day notice said, for an identical re-send
    new_classes: list[str] = field(default_factory=list)  # set when decided
    restrictions: list[str] = field(default_factory=list)
    note: str | None = None


@dataclass
class Citizen:
    certificates: dict[str, Certificate] = field(default_factory=dict)  # by certificate number
    early_payments: dict[str, dict[str, PaymentRecord]] = field(default_factory=dict)  # application id -> by tx
    early_answers: dict[str, EarlyAnswers] = field(default_factory=dict)  # by case id
    case: Case | None = None  # the open or last case
    closed: dict[str, str] = field(default_factory=dict)  # application id -> outcome: earlier cases (duplicates)
    applied: dict[str, int] = field(default_factory=dict)  # topic -> highest input offset applied (replay guard)


# --- the table boundary -----------------------------------------------------------------------------------------
def from_json(data: dict[str, Any] | None) -> Citizen | None:
    """The state as the table holds it (JSON of any version so far) -> the dataclasses; None stays None."""
    if data is None:
        return None
    if data.get("version", 1) > STATE_VERSION:
        raise ValueError(f"citizen state version {data['version']} is newer than this processor's "
                         f"({STATE_VERSION}): upgrade the processor")
    return _load(Citizen, _upgrade({k: v for k, v in data.items() if k != "version"}))


def to_json(state: Citizen) -> dict[str, Any]:
    return {"version": STATE_VERSION, **_dump(state)}


def encode(state: Citizen) -> bytes:
    """The table's value: `to_json` as JSON text, byte for byte what faust's json serializer wrote (compact
    separators, ASCII), so states written before and after read alike. The agent encodes it itself (the table's
    serializer is raw) because faust encoded a value twice, for RocksDB and for the changelog."""
    return json.dumps(to_json(state), separators=(",", ":")).encode()


def decode(data: bytes | None) -> Citizen | None:
    """What `encode` (or faust's json serializer) wrote -> the dataclasses; None stays None."""
    return None if data is None else from_json(json.loads(data))


def _upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """A state written before every payment was kept (one `payment` per case) in today's shape, so a processor
    upgraded over its old table goes on, and re-sends an old refund identically on a replay."""
    case = data["case"]
    if case is not None and "payment" in case:
        old = case.pop("payment")
        case["payments"] = {old["transaction_id"]: {**old, "at": None}} if old else {}
        # A case decided before: it kept the one payment unless rejected (then refunded it).
        kept = old["amount_vnd"] if old and old["status"] == "PAID" and case["status"] != "REJECTED" else 0
        case["fee"] = {"owed": kept, "keep": kept, "refunded_before": 0} if case["final"] else None
        case["refunds"] = {"refund": {"transaction_id": old["transaction_id"], "amount_vnd": old["amount_vnd"],
                                      "gateway_reference": old["gateway_reference"], "reasons": case["reasons"]}
                           } if old and "refund" in case["emitted"] else {}
    early = data["early_payments"]
    for app_id, payment in early.items():
        if "transaction_id" in payment:  # one payment, not a {transaction_id: payment} map
            early[app_id] = {payment["transaction_id"]: {**payment, "at": None}}
    return data


def _dump(value: Any) -> Any:
    kind = type(value)  # the exact types first (the worker dumps a state per citizen per batch), then the rest
    if kind in _AS_IS or value is None:
        return value
    if kind is dict:
        return {k: _dump(v) for k, v in value.items()}
    if kind is list:
        return [_dump(v) for v in value]
    if kind is datetime or kind is date:
        return value.isoformat()
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_dump(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return {name: _dump(getattr(value, name)) for name in value.__dataclass_fields__}
    return value


_AS_IS = frozenset({str, int, float, bool})


def _load(kind: Any, value: Any) -> Any:
    return _loader(kind)(value)


_LOADERS: dict[Any, Callable[[Any], Any]] = {}


def _loader(kind: Any) -> Callable[[Any], Any]:
    """The function turning JSON into `kind` (dataclasses, dict[str, T], list[T], tuple[...], T | None, datetime,
    date), built once per type: the worker loads a state on every input, so no type is inspected twice."""
    if kind not in _LOADERS:
        _LOADERS[kind] = _build_loader(kind)
    return _LOADERS[kind]


def _build_loader(kind: Any) -> Callable[[Any], Any]:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):  # T | None
        inner = next(a for a in args if a is not type(None))
        load_inner = _loader(inner)
        # "": version 1's unknown payment time
        empty = (None, "") if inner is datetime else (None,)
        return lambda value: None if value in empty else load_inner(value)
    if origin is dict:
        load_value = _loader(args[1])
        return lambda value: {k: load_value(v) for k, v in value.items()}
    if origin is list:
        load_item = _loader(args[0])
        return lambda value: [load_item(v) for v in value]
    if origin is tuple:
        loaders = [_loader(a) for a in args]
        return lambda value: tuple(load(v) for load, v in zip(loaders, value))
    if kind is datetime:
        return datetime.fromisoformat
    if kind is date:
        return date.fromisoformat
    if dataclasses.is_dataclass(kind):
        # resolved here, not at import: the annotations are strings (`from __future__ import annotations`)
        fields = {name: _loader(hint) for name, hint in typing.get_type_hints(kind).items()}
        return lambda value: kind(**{name: fields[name](v) for name, v in value.items()})
    return lambda value: value


# --- what the assembler asks of the state -----------------------------------------------------------------------
def deadline(state: Citizen | None) -> datetime | None:
    """When the open case must be looked at again if nothing arrives: the notice (2 working days), then, once it
    is sent (AWAITING), the decision (5). None without an open case (the deadline index keeps only these)."""
    case = state and state.case
    if not case or case.final:
        return None
    app = case.application
    return app.decision_due_at if case.status == "AWAITING" else app.notice_due_at


def prune_certificates(state: Citizen, now: datetime) -> None:
    """Forget certificates that can no longer support a renewal nor explain a rejection."""
    cutoff = now - CERTIFICATE_KEEP
    for number in [n for n, c in state.certificates.items() if c.signed_at < cutoff]:
        del state.certificates[number]


def case_facts(state: Citizen) -> CaseFacts:
    """The decision module's view of the open case."""
    case = state.case
    app = case.application
    identity = case.identity
    licence = case.licence
    return CaseFacts(
        application=Application(
            application_id=app.application_id, cccd=app.cccd, province=app.province,
            classes=tuple(app.classes), submitted_at=app.submitted_at,
            licence_number=app.licence_number, fee_quoted_vnd=app.fee_quoted_vnd,
            date_of_birth=app.date_of_birth),
        identity=None if identity is None else IdentityResult(
            match=identity.match, phone_tied=identity.phone_tied,
            mismatched_fields=frozenset(identity.mismatched_fields)),
        licence=None if licence is None else LicenceRecord(
            found=licence.found, classes=dict(licence.classes), issued_on=dict(licence.issued_on),
            revoked=licence.revoked, unresolved_violations=licence.unresolved_violations,
            point_balance=licence.point_balance),
        certificates=tuple(
            CertificateOnFile(number=n, signed_at=c.signed_at, conclusions=c.conclusions,
                              health_group=c.health_group, revoked=c.revoked)
            for n, c in sorted(state.certificates.items())),
        payments=tuple(Payment(status=p.status, amount_vnd=p.amount_vnd)
                       for _, p in sorted(case.payments.items())),
        withdrawn=case.withdrawn,
    )
