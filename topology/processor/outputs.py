"""The processor's output events. Each has an id derived from (case id, kind), never random.

Why: the processor is at-least-once. After a crash it may process an input again and send the same output again;
the copy has the same id (and the same content, since `occurred_at` is the time of the input that caused it), so
the portal, the payment gateway and the provinces recognise it. And since each kind happens at most once per case,
"at most one approval, at most one refund per case" is checkable by counting distinct ids.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from schemas import models
from topology import catalogue as topics
from topology.connection import environment

NAMESPACE = uuid.UUID("5b0f6a2e-8f1c-4c0e-9a53-6f1d2b7c9e01")  # fixed forever: ids must survive upgrades
SOURCE = {"system": "case-processor", "instance": environment().get("GPLX_INSTANCE", "gplx-case-processor")}

CASE_STREAM = (topics.CASES_EVENTS, "province")  # "province" = the case's current-province topic


@dataclass(frozen=True)
class Output:
    kind: str                 # opened, identity-request, licence-request, awaiting, approved, issuance, ...
    topics: tuple[str, ...]   # catalogue base names; "province" stands for cases.province.<code>
    key: str                  # cccd: outputs stay co-partitioned with the citizen's inputs
    event: models.Event


def case_id_for(application_id: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"case/{application_id}"))


def output_id(case_id: str, kind: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{case_id}/{kind}"))


def _meta(case: dict[str, Any], kind: str, now: datetime) -> dict[str, Any]:
    return {"event_id": output_id(case["case_id"], kind), "occurred_at": now, "source": SOURCE,
            "correlation_id": case["case_id"]}


def _who(case: dict[str, Any]) -> dict[str, Any]:
    app = case["application"]
    return {"case_id": case["case_id"], "cccd": app["cccd"], "province": app["province"]}


def build(kind: str, case: dict[str, Any], now: datetime) -> Output:
    """The output of `kind` for the case as it stands (re-built identically on a replay)."""
    app = case["application"]
    meta, who = _meta(case, kind, now), _who(case)
    if kind == "opened":
        event = models.CaseOpened(**meta, **who, application_id=app["application_id"], classes=app["classes"],
                                  missing_notice_due_at=datetime.fromisoformat(app["notice_due_at"]),
                                  decision_due_at=datetime.fromisoformat(app["decision_due_at"]))
        return Output(kind, CASE_STREAM, app["cccd"], event)
    if kind == "identity-request":
        event = models.IdentityCheckRequested(**meta, **who, request_id=meta["event_id"],
                                              full_name=app["full_name"],
                                              date_of_birth=date.fromisoformat(app["date_of_birth"]),
                                              phone=app["phone"])
        return Output(kind, (topics.IDENTITY_REQUESTS,), app["cccd"], event)
    if kind == "licence-request":
        event = models.LicenceLookupRequested(**meta, **who, request_id=meta["event_id"],
                                              licence_number=app["licence_number"])
        return Output(kind, (topics.POLICE_REQUESTS,), app["cccd"], event)
    if kind == "awaiting":
        event = models.CaseAwaiting(**meta, **who, missing=case["missing"])
        return Output(kind, CASE_STREAM, app["cccd"], event)
    if kind == "approved":
        event = models.CaseApproved(**meta, **who, classes=app["classes"], warnings=case["warnings"],
                                    rule_set_version=case["rule_set_version"])
        return Output(kind, CASE_STREAM, app["cccd"], event)
    if kind == "issuance":
        event = models.IssuanceRequested(**meta, **who, issuance_id=meta["event_id"],
                                         full_name=app["full_name"],
                                         date_of_birth=date.fromisoformat(app["date_of_birth"]),
                                         licence_number=app["licence_number"], classes=app["classes"],
                                         delivery_method=app["delivery_method"],
                                         postal_address=app.get("postal_address"))
        return Output(kind, (topics.ISSUANCE_REQUESTS,), app["cccd"], event)
    if kind == "rejected":
        event = models.CaseRejected(**meta, **who, reasons=case["reasons"], rule_set_version=case["rule_set_version"])
        return Output(kind, CASE_STREAM, app["cccd"], event)
    if kind == "escalated":
        event = models.CaseEscalated(**meta, **who, reasons=case["reasons"], note=case.get("note"))
        return Output(kind, CASE_STREAM, app["cccd"], event)
    if kind == "refund":
        payment = case["payment"]
        event = models.RefundRequested(**meta, **who, refund_id=meta["event_id"],
                                       transaction_id=payment["transaction_id"],
                                       gateway_reference=payment["gateway_reference"],
                                       amount_vnd=payment["amount_vnd"], reasons=case["reasons"])
        return Output(kind, (topics.PAYMENT_REFUND_REQUESTS,), app["cccd"], event)
    raise ValueError(f"unknown output kind {kind!r}")
