"""Everything the processor keeps about one citizen (key: cccd), as a JSON-friendly dict in the faust table.

Why a plain dict: the table's changelog must carry it (JSON), a replay must rebuild it, and an SRE must be able to
read it with kcat. Why per citizen, not per case: health certificates usually arrive *before* the application
(kept 12 months), and a payment may arrive before the application it pays for.

Shape:
    certificates:     {number: {signed_at, conclusions: {class: fit}, health_group, revoked}}
    early_payments:   {application_id: {transaction_id: payment}}  paid before the application reached us
    early_answers:    {case_id: {identity|licence: answer}}  answers that overtook their application (replays)
    case:             the open or last case (see `new_case`), or None
    closed:           {application_id: outcome}      earlier cases of this citizen, so duplicates are ignored
    applied:          {topic: offset}                highest input offset applied, per input topic (replay guard)
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from topology.decision import Application, CaseFacts, CertificateOnFile, IdentityResult, LicenceRecord, Payment

# A certificate is valid 12 months from signing. It is kept 6 months longer so that a citizen who applies with a
# lapsed one is told EXAM_EXPIRED ("your exam is too old") rather than EXAM_MISSING ("we never got it").
CERTIFICATE_KEEP = timedelta(days=366 + 183)


def empty() -> dict[str, Any]:
    return {"certificates": {}, "early_payments": {}, "early_answers": {}, "case": None, "closed": {}, "applied": {}}


def new_case(case_id: str, application: dict[str, Any]) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "application": application,
        "identity": None,
        "licence": None,
        "payments": {},        # transaction_id -> {transaction_id, status, amount_vnd, gateway_reference, at}
        "withdrawn": False,
        "status": "OPEN",      # OPEN -> AWAITING (notice sent) -> APPROVED | REJECTED | ESCALATED
        "final": False,
        "missing": [],
        "reasons": [],
        "warnings": [],
        "rule_set_version": "",
        "emitted": {},         # output kind -> [input position that produced it, its time]
        "fee": None,           # set when decided: {owed, keep, refunded_before} (see assembler._refund)
        "refunds": {},         # refund output kind -> what it refunds (kept: a replay re-sends it identically)
    }


def upgrade(state: dict[str, Any]) -> dict[str, Any]:
    """A state written before every payment was kept (one `payment` per case) in today's shape, so a processor
    upgraded over its old table goes on, and re-sends an old refund identically on a replay."""
    case = state["case"]
    if case is not None and "payment" in case:
        old = case.pop("payment")
        case["payments"] = {old["transaction_id"]: {**old, "at": ""}} if old else {}
        # A case decided before: it kept the one payment unless rejected (then refunded it).
        kept = old["amount_vnd"] if old and old["status"] == "PAID" and case["status"] != "REJECTED" else 0
        case["fee"] = {"owed": kept, "keep": kept, "refunded_before": 0} if case["final"] else None
        case["refunds"] = {"refund": {"transaction_id": old["transaction_id"], "amount_vnd": old["amount_vnd"],
                                      "gateway_reference": old["gateway_reference"], "reasons": case["reasons"]}
                           } if old and "refund" in case["emitted"] else {}
    early = state["early_payments"]
    for app_id, payment in early.items():
        if "transaction_id" in payment:  # one payment, not a {transaction_id: payment} map
            early[app_id] = {payment["transaction_id"]: {**payment, "at": ""}}
    return state


def deadline(state: dict[str, Any] | None) -> datetime | None:
    """When the open case must be looked at again if nothing arrives: the notice (2 working days), then, once it
    is sent (AWAITING), the decision (5). None without an open case (the deadline index keeps only these)."""
    case = state and state["case"]
    if not case or case["final"]:
        return None
    app = case["application"]
    due = app.get("decision_due_at") if case["status"] == "AWAITING" else app.get("notice_due_at")
    return None if due is None else datetime.fromisoformat(due)


def prune_certificates(state: dict[str, Any], now: datetime) -> None:
    """Forget certificates that can no longer support a renewal nor explain a rejection."""
    cutoff = now - CERTIFICATE_KEEP
    for number in [n for n, c in state["certificates"].items() if _ts(c["signed_at"]) < cutoff]:
        del state["certificates"][number]


def case_facts(state: dict[str, Any]) -> CaseFacts:
    """The decision module's view of the open case."""
    case = state["case"]
    app = case["application"]
    identity = case["identity"]
    licence = case["licence"]
    return CaseFacts(
        application=Application(
            application_id=app["application_id"], cccd=app["cccd"], province=app["province"],
            classes=tuple(app["classes"]), submitted_at=_ts(app["submitted_at"]),
            licence_number=app["licence_number"], fee_quoted_vnd=app.get("fee_quoted_vnd"),
            date_of_birth=date.fromisoformat(app["date_of_birth"])),
        identity=None if identity is None else IdentityResult(
            match=identity["match"], phone_tied=identity["phone_tied"],
            mismatched_fields=frozenset(identity["mismatched_fields"])),
        licence=None if licence is None else LicenceRecord(
            found=licence["found"],
            classes={c: (None if exp is None else datetime.fromisoformat(exp).date())
                     for c, exp in licence["classes"].items()},
            issued_on={c: date.fromisoformat(d) for c, d in licence.get("issued_on", {}).items()},  # older states: none
            revoked=licence["revoked"], unresolved_violations=licence["unresolved_violations"],
            point_balance=licence["point_balance"]),
        certificates=tuple(
            CertificateOnFile(number=n, signed_at=_ts(c["signed_at"]), conclusions=c["conclusions"],
                              health_group=c["health_group"], revoked=c["revoked"])
            for n, c in sorted(state["certificates"].items())),
        payments=tuple(Payment(status=p["status"], amount_vnd=p["amount_vnd"])
                       for _, p in sorted(case["payments"].items())),
        withdrawn=case["withdrawn"],
    )


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text)
