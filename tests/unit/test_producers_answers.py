"""Adapter answers without a broker: identity and police from their files, the payment gateway's refund ledger."""
from __future__ import annotations

import datetime as dt

from producers.adapters import identity, payment, police
from producers.adapters.localdb import JsonLinesDatabase, write_records
from producers.sdk import routes, validated
from schemas import models
from topology.catalogue import Catalogue

NOW = dt.datetime(2025, 9, 1, 9, tzinfo=dt.timezone.utc)
SRC = models.Source(system="case-processor", instance="t")
CCCD = "001085012345"


def _identity_request(**kw):
    base = dict(event_id="1b4e28ba-2fa1-11d2-883f-0016d3cca427", occurred_at=NOW, source=SRC, correlation_id="c",
                request_id="r", case_id="c", cccd=CCCD, province="01", full_name="Nguyễn Văn An",
                date_of_birth=dt.date(1985, 3, 14), phone="0912345678")
    return models.IdentityCheckRequested(**{**base, **kw})


def test_identity_match_mismatch_phone_and_reload(tmp_path):
    path = tmp_path / "identity.jsonl"
    write_records(path, [{"cccd": CCCD, "full_name": "Nguyễn Văn An", "date_of_birth": "1985-03-14",
                          "phones": ["+84912345678"]}])
    db = JsonLinesDatabase(path)
    ok = identity.answer(_identity_request(), db, NOW)
    assert ok.match and ok.phone_tied and ok.event_id == identity.answer(_identity_request(), db, NOW).event_id
    differs = identity.answer(_identity_request(full_name="Nguyen Van An", phone="0900000000"), db, NOW)
    assert not differs.match and differs.mismatched_fields == ["full_name"] and not differs.phone_tied
    unknown = identity.answer(_identity_request(cccd="079185654321"), db, NOW)
    assert unknown.mismatched_fields == ["cccd"]
    write_records(path, [{"cccd": "079185654321", "full_name": "Nguyễn Văn An", "date_of_birth": "1985-03-14",
                          "phones": []}])  # merged in; the adapter sees it without a restart
    assert identity.answer(_identity_request(cccd="079185654321"), db, NOW).match


def test_police_found_and_not_found(tmp_path):
    path = tmp_path / "police.jsonl"
    write_records(path, [{"cccd": CCCD, "licence_number": "010123456789", "revoked": True,
                          "classes": [{"licence_class": "A1", "issued_on": "2001-02-03", "expires_on": None}]}])
    db = JsonLinesDatabase(path)
    request = models.LicenceLookupRequested(event_id="1b4e28ba-2fa1-11d2-883f-0016d3cca427", occurred_at=NOW,
                                            source=SRC, request_id="r", case_id="c", cccd=CCCD, province="01",
                                            licence_number="010123456789")
    found = police.answer(request, db, NOW)
    assert found.found and found.revoked and found.classes[0].expires_on is None and found.point_balance == 12
    other = police.answer(request.model_copy(update={"licence_number": "999"}), db, NOW)
    assert not other.found and other.classes == []


def test_refund_once_per_refund_id_and_per_transaction(tmp_path):
    ledger = payment.PaymentLedger(tmp_path / "payments.jsonl")
    paid = payment.payment_transaction(application_id="APP-1", cccd=CCCD, amount_vnd=135_000, occurred_at=NOW)
    ledger.record_payment(paid)
    gateway = payment.PaymentGateway(ledger, now=lambda: NOW)
    request = models.RefundRequested(event_id="1b4e28ba-2fa1-11d2-883f-0016d3cca427", occurred_at=NOW, source=SRC,
                                     refund_id="rf-1", case_id="c", cccd=CCCD, province="01",
                                     transaction_id=paid.transaction_id, gateway_reference=paid.gateway_reference,
                                     amount_vnd=200_000, reasons=["ZERO_POINTS"])
    first = gateway.refund(request)
    assert len(first) == 1 and first[0].amount_vnd == 135_000 and first[0].application_id == "APP-1"
    # Executed but the answer was lost (crash before publish): the same event again, no new money movement.
    assert payment.PaymentGateway(payment.PaymentLedger(ledger.path)).refund(request) == first
    gateway.refund_published(request, first)
    assert gateway.refund(request) == []
    restarted = payment.PaymentGateway(payment.PaymentLedger(ledger.path))
    assert restarted.refund(request) == []
    assert restarted.refund(request.model_copy(update={"refund_id": "rf-2"})) == []  # same transaction


def test_routes_cover_every_source_event_and_validation_names_fields():
    table = routes(Catalogue.build(prefix="x."))
    assert table["vn.gplx.clinics.HealthCertificate"] == "x.health.exam-results"
    assert table["vn.gplx.payment.RefundRequested"] == "x.payment.refund-requests"
    assert "vn.gplx.cases.CaseOpened" not in table  # on cases.events and every province topic: caller chooses
    broken = payment.payment_transaction(application_id="A", cccd=CCCD, amount_vnd=1, occurred_at=NOW).model_copy(
        update={"amount_vnd": -5})  # model_copy does not validate: the SDK must
    try:
        validated(broken)
    except Exception as exc:  # InvalidEvent
        assert "field 'amount_vnd' breaks rule vnd_non_negative" in str(exc) and type(exc).__name__ == "InvalidEvent"
    else:
        raise AssertionError("a negative amount must not validate")
