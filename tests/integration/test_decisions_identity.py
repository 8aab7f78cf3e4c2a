"""Decisions a citizen can trust (issue 10), on the real broker with the processor as a subprocess:
- an application with an old (pre-July-2025) residence code is routed to its current province, not dead-lettered;
- the identity adapter answers from its database and the issuance prints the CCCD record's name, date of birth and
  sex, with the difference as a warning;
- a certificate signed in the future goes to the DLQ as SIGNED_IN_FUTURE and does not override a genuine UNFIT;
  "the future" is judged against the Kafka record's timestamp, so a replay judges the same.

One worker run serves every test of the module (starting one takes a while on 2 shared cores).
"""
from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import pytest

from producers.adapters.localdb import write_records
from producers.adapters.runner import AdapterSet
from producers.testing import group_settled
from schemas import models
from schemas.serde import SerializationContext
from tests.case_scenarios import SRC, T0, Script
from tests.processor_harness import ProcessorBus, wait_for
from topology import catalogue as topics

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OLD_CODES = {"34": "33", "02": "08", "30": "31"}  # typed on the portal -> the case's current province
OLD_CASES = [Script(f"old-{typed}", 8100 + i) for i, typed in enumerate(OLD_CODES)]
RECORD_CASE = Script("record", 8201)  # identity answered by the real adapter from its database
RECORD = {"cccd": RECORD_CASE.cccd, "full_name": "Nguyễn Văn Ân", "date_of_birth": "1985-04-03", "sex": "MALE",
          "phones": ["0912345678"]}  # the portal says "Nguyễn Văn An", born 1985-03-04
FORGED_CASE = Script("forged", 8301, certificate="unfit", expected="REJECTED", expected_reasons=("UNFIT",))
STAMPED_CASE = Script("stamped", 8401)  # a genuine date, but after the record's own timestamp


@dataclass
class Played:
    bus: ProcessorBus
    forged_bytes: bytes
    stamped_bytes: bytes
    finals: dict


def _application_typed(script: Script, typed: str):
    return [(t, e.model_copy(update={"residence_province": typed}) if isinstance(e, models.ApplicationSubmitted)
             else e) for t, e in script.events()]


def _certificate(script: Script, number: str, signed: dt.datetime, fit: bool) -> models.HealthCertificate:
    return models.HealthCertificate(
        event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{script.name}/{number}")), occurred_at=T0, source=SRC,
        certificate_number=f"{number}/GKSKLX/BVBM/{signed.year % 100:02d}", version_kind="ADD", cccd=script.cccd,
        clinic_code="BVBM", health_group=3, requested_class="B", conclusions=[{"licence_class": "B", "fit": fit}],
        signed_at=signed, doctor="BS. Lê C", signature=b"sig")


@pytest.fixture(scope="module")
def played(kafka_bootstrap, schema_registry_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("decisions-identity")
    bus = ProcessorBus(kafka_bootstrap, schema_registry_url, provinces=("01", "08", "31", "33"))
    worker = bus.worker(tmp).start()
    write_records(tmp / "identity.jsonl", [RECORD])
    try:
        wait_for(lambda: group_settled(bus.bootstrap, bus.group, 1), 90, "the worker to join its group")
        for script, typed in zip(OLD_CASES, OLD_CODES):
            bus.publish(_application_typed(script, typed))
        bus.publish([(t, e) for t, e in RECORD_CASE.events() if not isinstance(e, models.IdentityCheckResult)])

        health = bus.catalogue.name(topics.HEALTH_EXAM_RESULTS)
        bus.publish(FORGED_CASE.events())  # its genuine certificate says UNFIT
        forged = _certificate(FORGED_CASE, "99001", dt.datetime(2099, 1, 1, tzinfo=dt.timezone.utc), fit=True)
        forged_bytes = bus.serialize(forged, SerializationContext(health))
        bus.publish_raw(topics.HEALTH_EXAM_RESULTS, FORGED_CASE.cccd.encode(), forged_bytes)

        # Signed 20 days before T0, so in the past by the wall clock, but 10 days after the record's timestamp:
        # refused, which shows arrival is the record's timestamp (the same on every replay), not the wall clock.
        stamped = _certificate(STAMPED_CASE, "77001", T0 - dt.timedelta(days=20), fit=True)
        stamped_bytes = bus.serialize(stamped, SerializationContext(health))
        stamp_ms = int((T0 - dt.timedelta(days=30)).timestamp() * 1000)
        bus.producer.send(health, key=STAMPED_CASE.cccd.encode(), value=stamped_bytes, timestamp_ms=stamp_ms)
        bus.producer.flush()

        scripted = OLD_CASES + [FORGED_CASE]
        wait_for(lambda: _decided(bus, scripted), 120, "a decision on every scripted case")
        wait_for(bus.inputs_consumed, 60, "the processor to consume every input")
        # Only now the identity adapter: its answers are dated by the wall clock (2026), and one that reached an
        # open scripted case (dated June 2025) before its last fact would move that case past its deadline. The
        # requests of decided cases get answers that change nothing; RECORD_CASE waits for its answer.
        with AdapterSet(kafka_bootstrap, bus.registry, catalogue=bus.catalogue, data_dir=tmp, run_police=False,
                        run_payment=False):
            finals = wait_for(lambda: _decided(bus, scripted + [RECORD_CASE]), 120, "the identity answer's case")
        yield Played(bus, forged_bytes, stamped_bytes, finals)
    finally:
        worker.stop()
        bus.close()
        for log in sorted(tmp.glob("*.log")):  # shown by pytest only when a test failed
            print(f"--- last lines of {log.name} ---", *log.read_text(errors="replace").splitlines()[-40:], sep="\n")


def _decided(bus: ProcessorBus, cases: list[Script]) -> dict | None:
    finals = bus.finals()
    return finals if all(c.case_id in finals for c in cases) else None


def _letters(bus: ProcessorBus) -> list:
    return [e for _, e, _ in bus.read(topics.DLQ)]


def test_old_residence_codes_are_routed_to_the_current_province_and_kept(played):
    bus = played.bus
    assert not [e for e in _letters(bus) if e.original_topic.endswith(topics.PORTAL_APPLICATIONS)]
    for script, (typed, current) in zip(OLD_CASES, OLD_CODES.items()):
        [decision] = played.finals[script.case_id]
        assert type(decision).__name__ == "CaseApproved" and decision.province == current, script.name
        on_topic = [e for _, e, _ in bus.read(topics.CASES_PROVINCE_PREFIX + current) if e.case_id == script.case_id]
        [opened] = [e for e in on_topic if isinstance(e, models.CaseOpened)]
        assert opened.province == current and opened.residence_province_original == typed
        [issuance] = [e for _, e, _ in bus.read(topics.ISSUANCE_REQUESTS) if e.case_id == script.case_id]
        assert issuance.province == current


def test_the_new_licence_prints_the_cccd_record_and_the_difference_is_a_warning(played):
    bus = played.bus
    [answer] = [e for _, e, _ in bus.read(topics.IDENTITY_RESULTS) if e.case_id == RECORD_CASE.case_id]
    assert set(answer.mismatched_fields) == {"full_name", "date_of_birth"}
    [decision] = played.finals[RECORD_CASE.case_id]
    assert type(decision).__name__ == "CaseApproved" and decision.warnings == ["NAME_OR_DOB_DIFFERS"]
    [issuance] = [e for _, e, _ in bus.read(topics.ISSUANCE_REQUESTS) if e.case_id == RECORD_CASE.case_id]
    assert (issuance.full_name, issuance.date_of_birth, issuance.sex) == \
        ("Nguyễn Văn Ân", dt.date(1985, 4, 3), "MALE")


def test_a_certificate_signed_in_the_future_is_dead_lettered_and_never_the_latest(played):
    bus = played.bus
    [decision] = played.finals[FORGED_CASE.case_id]
    assert type(decision).__name__ == "CaseRejected" and decision.reasons == ["UNFIT"]
    future = {bytes(e.original_value): e for e in _letters(bus) if e.error_code == "SIGNED_IN_FUTURE"}
    assert set(future) == {played.forged_bytes, played.stamped_bytes}
    for key, letter in ((FORGED_CASE.cccd, future[played.forged_bytes]),
                        (STAMPED_CASE.cccd, future[played.stamped_bytes])):
        assert letter.original_topic == bus.catalogue.name(topics.HEALTH_EXAM_RESULTS)
        assert letter.original_key == key.encode()
        assert "signed in the future" in letter.error_text and key not in letter.error_text
