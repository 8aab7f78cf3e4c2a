"""The identity, police and payment adapters answer requests end to end on the real broker and registry."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest

from producers.adapters import payment
from producers.adapters.localdb import write_records
from producers.adapters.runner import AdapterSet
from producers.ids import derived_id
from producers.sdk import Publisher
from producers.testing import create_topics, private_catalogue, read_events, topic_size, wait_until
from schemas import models
from schemas.registry import RegistryClient
from topology import catalogue as topics
from topology import contracts

pytestmark = pytest.mark.integration

NOW = dt.datetime(2025, 9, 1, 9, 0, tzinfo=dt.timezone.utc)
KNOWN, UNKNOWN = "001085012345", "079190654321"
SOURCE = models.Source(system="case-processor", instance="test")


@pytest.fixture
def private_bus(kafka_bootstrap, schema_registry_url):
    catalogue = private_catalogue()
    create_topics(kafka_bootstrap, catalogue)
    registry = RegistryClient(schema_registry_url)
    contracts.register(registry, catalogue)  # as the operator
    publisher = Publisher(kafka_bootstrap, registry, catalogue=catalogue, client_id="test-case-processor")
    yield catalogue, registry, publisher
    publisher.close()
    registry.close()


def identity_request(cccd: str, name: str, born: dt.date, phone: str) -> models.IdentityCheckRequested:
    return models.IdentityCheckRequested(
        event_id=str(uuid.uuid4()), occurred_at=NOW, source=SOURCE, correlation_id=f"case-{cccd}",
        request_id=f"req-{cccd}", case_id=f"case-{cccd}", cccd=cccd, province="01", full_name=name,
        date_of_birth=born, phone=phone)


def licence_request(cccd: str, number: str) -> models.LicenceLookupRequested:
    return models.LicenceLookupRequested(
        event_id=str(uuid.uuid4()), occurred_at=NOW, source=SOURCE, correlation_id=f"case-{cccd}",
        request_id=f"lic-{cccd}", case_id=f"case-{cccd}", cccd=cccd, province="01", licence_number=number)


def test_identity_and_police_answer_from_their_databases(kafka_bootstrap, private_bus, tmp_path):
    catalogue, registry, publisher = private_bus
    write_records(tmp_path / "identity.jsonl", [
        {"cccd": KNOWN, "full_name": "Nguyễn Văn An", "date_of_birth": "1985-03-14", "sex": "MALE",
         "phones": ["0912345678"]}])
    write_records(tmp_path / "police.jsonl", [
        {"cccd": KNOWN, "licence_number": "010123456789", "revoked": False, "unresolved_violations": 0,
         "point_balance": 9,
         "classes": [{"licence_class": "B2", "issued_on": "2016-05-02", "expires_on": "2026-05-02"}]}])
    requests = [identity_request(KNOWN, "nguyễn  văn an", dt.date(1985, 3, 14), "+84912345678"),
                identity_request(UNKNOWN, "Trần Thị Bình", dt.date(1990, 1, 2), "0987654321"),
                licence_request(KNOWN, "010123456789"), licence_request(UNKNOWN, "790000000001")]
    publisher.publish_many(requests)

    with AdapterSet(kafka_bootstrap, registry, catalogue=catalogue, data_dir=tmp_path, run_payment=False):
        ids = read_events(kafka_bootstrap, registry, catalogue.name(topics.IDENTITY_RESULTS), count=2)
        lic = read_events(kafka_bootstrap, registry, catalogue.name(topics.POLICE_LICENCE_STATUS), count=2)

    answers = {key: e for key, e in ids}
    assert set(answers) == {KNOWN, UNKNOWN}  # keyed by cccd
    assert answers[KNOWN].match and answers[KNOWN].phone_tied and answers[KNOWN].mismatched_fields == []
    assert not answers[UNKNOWN].match and answers[UNKNOWN].mismatched_fields == ["cccd"]
    # the record's own data, which the new licence prints (not the name as typed: "nguyễn  văn an")
    assert (answers[KNOWN].record_full_name, answers[KNOWN].record_date_of_birth, answers[KNOWN].record_sex) == \
        ("Nguyễn Văn An", dt.date(1985, 3, 14), "MALE")
    assert answers[UNKNOWN].record_full_name is None and answers[UNKNOWN].record_sex is None
    assert answers[KNOWN].correlation_id == f"case-{KNOWN}" and answers[KNOWN].request_id == f"req-{KNOWN}"
    assert answers[KNOWN].event_id == derived_id("identity-answer", requests[0].event_id)
    status = {key: e for key, e in lic}
    assert status[KNOWN].found and status[KNOWN].point_balance == 9
    assert [c.licence_class for c in status[KNOWN].classes] == ["B2"]
    assert status[KNOWN].classes[0].expires_on == dt.date(2026, 5, 2)
    assert not status[UNKNOWN].found and status[UNKNOWN].classes == []
    assert status[UNKNOWN].correlation_id == f"case-{UNKNOWN}"


def test_refund_is_published_once_even_when_the_request_is_delivered_twice(kafka_bootstrap, private_bus, tmp_path):
    catalogue, registry, publisher = private_bus
    ledger_path = tmp_path / "payments.jsonl"
    paid = payment.payment_transaction(application_id="APP-1", cccd=KNOWN, amount_vnd=135_000, occurred_at=NOW)
    payment.PaymentLedger(ledger_path).record_payment(paid)
    publisher.publish(paid)
    refund = models.RefundRequested(
        event_id=str(uuid.uuid4()), occurred_at=NOW, source=SOURCE, correlation_id="case-1",
        refund_id="refund-case-1", case_id="case-1", cccd=KNOWN, province="01",
        transaction_id=paid.transaction_id, gateway_reference=paid.gateway_reference, amount_vnd=135_000,
        reasons=["PHONE_NOT_TIED"])
    publisher.publish(refund)
    publisher.publish(refund)  # re-delivered by the case processor

    transactions = catalogue.name(topics.PAYMENT_TRANSACTIONS)
    with AdapterSet(kafka_bootstrap, registry, catalogue=catalogue, data_dir=tmp_path, run_identity=False,
                    run_police=False) as adapters:
        assert wait_until(lambda: adapters.stats()["payment"].requests == 2, timeout_s=30)
        stats = adapters.stats()["payment"]
    assert stats.answers == 1 and stats.skipped == 0
    # A restarted gateway (same ledger) that sees the request a third time refunds nothing either.
    publisher.publish(refund)
    with AdapterSet(kafka_bootstrap, registry, catalogue=catalogue, data_dir=tmp_path, run_identity=False,
                    run_police=False) as adapters:
        assert wait_until(lambda: adapters.stats()["payment"].requests == 1, timeout_s=30)
        assert adapters.stats()["payment"].answers == 0

    events = [e for _, e in read_events(kafka_bootstrap, registry, transactions, count=2)]
    assert topic_size(kafka_bootstrap, transactions) == 2  # the PAID and exactly one REFUNDED
    refunded = [e for e in events if e.status == "REFUNDED"]
    assert len(refunded) == 1
    assert refunded[0].application_id == "APP-1" and refunded[0].amount_vnd == 135_000
    assert refunded[0].event_id == derived_id("refund-event", "refund-case-1")
