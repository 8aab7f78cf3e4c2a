"""The processor's output events. Each has an id derived from (case id, kind), never random.

Why: the processor is at-least-once. After a crash it may process an input again and send the same output again;
the copy has the same id (and the same content, since `occurred_at` is the time of the input that caused it), so
the portal, the payment gateway and the provinces recognise it. And since each kind happens at most once per case,
"at most one approval, at most one refund per case" is checkable by counting distinct ids.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas import models
from topology import catalogue as topics
from topology.connection import environment
from topology.processor.citizen import Case

NAMESPACE = uuid.UUID("5b0f6a2e-8f1c-4c0e-9a53-6f1d2b7c9e01")  # fixed forever: ids must survive upgrades
SOURCE = {"system": "case-processor", "instance": environment().get("GPLX_INSTANCE", "gplx-case-processor")}

CASE_STREAM = (topics.CASES_EVENTS, "province")  # "province" = the case's current-province topic


@dataclass(frozen=True)
class Output:
    kind: str                 # opened, identity-request, licence-request, awaiting[/<reasons>], approved,
                              # issuance, rejected, escalated, refund/<transaction id>
    topics: tuple[str, ...]   # catalogue base names; "province" stands for cases.province.<code>
    key: str                  # cccd: outputs stay co-partitioned with the citizen's inputs
    event: models.Event


def case_id_for(application_id: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"case/{application_id}"))


def output_id(case_id: str, kind: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{case_id}/{kind}"))


def _meta(case: Case, kind: str, now: datetime) -> dict[str, Any]:
    return {"event_id": output_id(case.case_id, kind), "occurred_at": now, "source": SOURCE,
            "correlation_id": case.case_id}


def _who(case: Case) -> dict[str, Any]:
    return {"case_id": case.case_id, "cccd": case.application.cccd, "province": case.application.province}


def _new_classes(case: Case) -> dict[str, Any]:
    """The 2025 classes an approval issues (pre-2025 classes exchanged) and their restriction codes; a case
    decided before they were recorded has none (the fields' default)."""
    return {"new_classes": case.new_classes, "restrictions": case.restrictions}


def _printed_identity(case: Case) -> dict[str, Any]:
    """Name, date of birth and sex the new licence prints: the CCCD record's where the identity answer carried
    them (domain: where they differ, the new licence uses the CCCD data), else what the applicant typed."""
    app = case.application
    record = case.identity and case.identity.record
    return {"full_name": (record and record.full_name) or app.full_name,
            "date_of_birth": (record and record.date_of_birth) or app.date_of_birth,
            "sex": record and record.sex}


def build(kind: str, case: Case, now: datetime) -> Output:
    """The output of `kind` for the case as it stands (re-built identically on a replay)."""
    app = case.application
    meta, who = _meta(case, kind, now), _who(case)
    if kind == "opened":
        typed = app.residence_province  # None in states saved before this field existed
        event = models.CaseOpened(**meta, **who, application_id=app.application_id, classes=app.classes,
                                  missing_notice_due_at=app.notice_due_at, decision_due_at=app.decision_due_at,
                                  residence_province_original=typed if typed != app.province else None)
        return Output(kind, CASE_STREAM, app.cccd, event)
    if kind == "identity-request":
        event = models.IdentityCheckRequested(**meta, **who, request_id=meta["event_id"], full_name=app.full_name,
                                              date_of_birth=app.date_of_birth, phone=app.phone)
        return Output(kind, (topics.IDENTITY_REQUESTS,), app.cccd, event)
    if kind == "licence-request":
        event = models.LicenceLookupRequested(**meta, **who, request_id=meta["event_id"],
                                              licence_number=app.licence_number)
        return Output(kind, (topics.POLICE_REQUESTS,), app.cccd, event)
    if kind == "awaiting":  # the 2-working-day notice
        event = models.CaseAwaiting(**meta, **who, missing=case.missing if case.notified is None else case.notified)
        return Output(kind, CASE_STREAM, app.cccd, event)
    if kind.startswith("awaiting/"):  # shown as soon as something blocks the case; the kind names the reasons
        event = models.CaseAwaiting(**meta, **who, missing=kind.removeprefix("awaiting/").split(","))
        return Output(kind, CASE_STREAM, app.cccd, event)
    if kind == "approved":
        event = models.CaseApproved(**meta, **who, classes=app.classes, warnings=case.warnings,
                                    rule_set_version=case.rule_set_version, **_new_classes(case))
        return Output(kind, CASE_STREAM, app.cccd, event)
    if kind == "issuance":
        printed = _printed_identity(case)
        event = models.IssuanceRequested(**meta, **who, issuance_id=meta["event_id"], **printed,
                                         licence_number=app.licence_number, classes=app.classes,
                                         delivery_method=app.delivery_method, postal_address=app.postal_address,
                                         **_new_classes(case))
        return Output(kind, (topics.ISSUANCE_REQUESTS,), app.cccd, event)
    if kind == "rejected":
        event = models.CaseRejected(**meta, **who, reasons=case.reasons, rule_set_version=case.rule_set_version)
        return Output(kind, CASE_STREAM, app.cccd, event)
    if kind == "escalated":
        event = models.CaseEscalated(**meta, **who, reasons=case.reasons, note=case.note)
        return Output(kind, CASE_STREAM, app.cccd, event)
    if kind == "refund" or kind.startswith("refund/"):  # "refund/<transaction id>"; "refund": older states
        refund = case.refunds[kind]
        event = models.RefundRequested(**meta, **who, refund_id=meta["event_id"],
                                       transaction_id=refund.transaction_id,
                                       gateway_reference=refund.gateway_reference,
                                       amount_vnd=refund.amount_vnd, reasons=refund.reasons)
        return Output(kind, (topics.PAYMENT_REFUND_REQUESTS,), app.cccd, event)
    raise ValueError(f"unknown output kind {kind!r}")
