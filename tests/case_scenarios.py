"""A scripted set of renewal cases, one per outcome and reason code, as the events the sources would publish.

Used by the processor's unit tests (pure core) and its integration tests (real broker), so both feed the same
facts. Identity and police answers are scripted here as the adapters would send them: the case id is
deterministic from the application id, so the script can know it in advance.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone

from schemas import models
from topology import catalogue as topics
from topology.processor.outputs import case_id_for

T0 = datetime(2025, 6, 2, 2, 0, tzinfo=timezone.utc)  # Monday 2 June 2025, 09:00 in Hà Nội
SRC = {"system": "test-script", "instance": "1"}


def _id(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts)))


@dataclass(frozen=True)
class Script:
    """One citizen's case. Defaults give an approvable case; each knob introduces one failure."""

    name: str
    serial: int
    classes: tuple[str, ...] = ("B",)
    identity_match: bool = True
    mismatched_fields: tuple[str, ...] = ()
    phone_tied: bool = True
    licence_found: bool = True
    revoked: bool = False
    violations: int = 0
    points: int = 12
    expires_on: date | None = date(2026, 1, 1)
    issued_on: date = date(2016, 1, 1)       # before 2025: "A1", "B1", "C", "D" on the record are old classes
    certificate: str | None = "fit"          # fit | unfit | expired | wrong-class | revoked | None (never sent)
    payment: str | None = "PAID"            # PAID | FAILED | None
    amounts: tuple[int, ...] = (135000,)    # one transaction per amount, each with the status above
    withdraw: bool = False
    expected: str = "APPROVED"              # outcome
    expected_reasons: tuple[str, ...] = ()
    province_old: str = "01"                # old code of the residence; routed by its current code
    extras: dict = field(default_factory=dict)

    @property
    def cccd(self) -> str:
        return f"001085{self.serial:06d}"  # registered in Hà Nội (01), male, born 1985

    @property
    def application_id(self) -> str:
        return f"HS-{self.serial:06d}"

    @property
    def case_id(self) -> str:
        return case_id_for(self.application_id)

    def events(self) -> list[tuple[str, models.Event]]:
        """(topic base name, event) for every fact of the case, in the 'natural' order."""
        from schemas.reference import current_code_for

        province = current_code_for(self.province_old)
        out: list[tuple[str, models.Event]] = []
        t = T0
        if self.certificate:
            signed = T0 - (timedelta(days=400) if self.certificate == "expired" else timedelta(days=20))
            fit = self.certificate != "unfit"
            number = f"{self.serial % 100000:05d}/GKSKLX/BVBM/{signed.year % 100:02d}"
            covered = ("A1",) if self.certificate == "wrong-class" else self.classes  # A1 covers no car class
            out.append((topics.HEALTH_EXAM_RESULTS, models.HealthCertificate(
                event_id=_id(self.name, "cert"), occurred_at=signed, source=SRC,
                certificate_number=number, version_kind="ADD", cccd=self.cccd, clinic_code="BVBM", health_group=3,
                requested_class=self.classes[0],
                conclusions=[{"licence_class": c, "fit": fit} for c in covered],
                signed_at=signed, doctor="BS. Trần Văn A", signature=b"sig")))
            if self.certificate == "revoked":
                revoke = {**out[-1][1].model_dump(), "event_id": _id(self.name, "revoke"),
                          "occurred_at": signed + timedelta(days=1), "version_kind": "REVOKE", "conclusions": []}
                out.append((topics.HEALTH_EXAM_RESULTS, models.HealthCertificate(**revoke)))
        out.append((topics.PORTAL_APPLICATIONS, models.ApplicationSubmitted(
            event_id=_id(self.name, "app"), occurred_at=t, source=SRC, application_id=self.application_id,
            cccd=self.cccd, full_name="Nguyễn Văn An", date_of_birth=date(1985, 3, 4), phone="0912345678",
            licence_number=f"01{self.serial:010d}", classes=list(self.classes), residence_province=province,
            residence_ward="Phường Ba Đình", delivery_method="POST", postal_address="1 Hùng Vương",
            fee_quoted_vnd=135000)))
        out.append((topics.IDENTITY_RESULTS, models.IdentityCheckResult(
            event_id=_id(self.name, "idres"), occurred_at=t + timedelta(minutes=1), source=SRC,
            correlation_id=self.case_id, request_id=_id(self.name, "idreq"), case_id=self.case_id,
            cccd=self.cccd, province=province, match=self.identity_match,
            mismatched_fields=list(self.mismatched_fields), phone_tied=self.phone_tied)))
        out.append((topics.POLICE_LICENCE_STATUS, models.LicenceStatus(
            event_id=_id(self.name, "lic"), occurred_at=t + timedelta(minutes=2), source=SRC,
            correlation_id=self.case_id, request_id=_id(self.name, "licreq"), case_id=self.case_id,
            cccd=self.cccd, province=province, licence_number=f"01{self.serial:010d}", found=self.licence_found,
            classes=[{"licence_class": c, "issued_on": self.issued_on, "expires_on": self.expires_on}
                     for c in self.classes] if self.licence_found else [],
            revoked=self.revoked, unresolved_violations=self.violations, point_balance=self.points)))
        for i, amount in enumerate(self.amounts if self.payment else ()):
            n = (str(i),) if i else ()  # the first transaction keeps the ids it always had
            out.append((topics.PAYMENT_TRANSACTIONS, models.PaymentTransaction(
                event_id=_id(self.name, "pay", *n), occurred_at=t + timedelta(minutes=3 + i), source=SRC,
                transaction_id=_id(self.name, "tx", *n), application_id=self.application_id, cccd=self.cccd,
                status=self.payment, amount_vnd=amount, gateway_reference=f"GW{self.serial}" + (f"-{i}" if i else ""),
                failure_reason="card declined" if self.payment == "FAILED" else None)))
        if self.withdraw:
            out.append((topics.PORTAL_APPLICATIONS, models.ApplicationWithdrawn(
                event_id=_id(self.name, "wd"), occurred_at=t + timedelta(minutes=4), source=SRC,
                application_id=self.application_id, cccd=self.cccd, reason="changed mind")))
        return out


def scripts() -> list[Script]:
    """Every outcome, and every reason code the rules can give, once each."""
    s = [
        Script("approved", 1),
        Script("approved-a1-no-exam", 2, classes=("A1",), certificate=None, expires_on=None),
        Script("approved-old-province", 3, province_old="02"),  # Hà Giang -> Tuyên Quang (08)
        Script("name-differs-warning", 4, identity_match=False, mismatched_fields=("full_name",),
               expected_reasons=()),
        Script("identity-mismatch", 5, identity_match=False, mismatched_fields=("cccd",),
               expected="REJECTED", expected_reasons=("IDENTITY_MISMATCH",)),
        Script("phone-not-tied", 6, phone_tied=False, expected="REJECTED", expected_reasons=("PHONE_NOT_TIED",)),
        Script("exam-expired", 7, certificate="expired", expected="ESCALATED",
               expected_reasons=("EXAM_EXPIRED", "DEADLINE_EXCEEDED")),  # a new exam may still come
        Script("unfit", 8, certificate="unfit", expected="REJECTED", expected_reasons=("UNFIT",)),
        Script("payment-failed", 9, payment="FAILED", expected="ESCALATED",
               expected_reasons=("PAYMENT_FAILED", "DEADLINE_EXCEEDED")),  # the citizen may pay again
        Script("licence-not-found", 10, licence_found=False, expected="ESCALATED",
               expected_reasons=("LICENCE_NOT_FOUND",)),
        Script("revoked", 11, revoked=True, expected="REJECTED", expected_reasons=("LICENCE_REVOKED",)),
        Script("violation", 12, violations=1, expected="REJECTED", expected_reasons=("UNRESOLVED_VIOLATION",)),
        Script("zero-points", 13, points=0, expected="REJECTED", expected_reasons=("ZERO_POINTS",)),
        Script("expired-licence", 14, expires_on=date(2025, 1, 1), expected="ESCALATED",
               expected_reasons=("LICENCE_EXPIRED",)),
        Script("withdrawn", 15, withdraw=True, payment=None, expected="REJECTED", expected_reasons=("APPLICATION_WITHDRAWN",)),
        # Missing facts: decided only at the 5-working-day deadline (a tick moves the clock there).
        Script("exam-missing", 16, certificate=None, expected="ESCALATED",
               expected_reasons=("EXAM_MISSING", "DEADLINE_EXCEEDED")),
        Script("payment-missing", 17, payment=None, expected="ESCALATED",
               expected_reasons=("PAYMENT_MISSING", "DEADLINE_EXCEEDED")),
    ]
    return s


def with_serial_offset(script: Script, offset: int) -> Script:
    """The same script for another citizen (so one broker run can hold several copies)."""
    return replace(script, serial=script.serial + offset, name=f"{script.name}+{offset}")
