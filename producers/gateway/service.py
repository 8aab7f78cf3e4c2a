"""What the clinic gateway decides for each certificate, without HTTP: validate, check the caller's clinic and the
signature, deduplicate, publish through the SDK (acks=all) and answer only after the broker acknowledged.

Idempotency (by certificate number + version kind + content hash, `schemas.signature.content_hash`):
- same number and version kind, same content -> the first answer again (its event id), nothing published;
- same number and version kind, other content -> 409;
- otherwise published; 202 with the event id once acknowledged.

The index is derived from Kafka, not memory only: at start the gateway reads `health.exam-results` from the
beginning (every certificate on the bus, whoever published it) and says "ready" only once it has read to the end
offsets; afterwards it keeps following the topic, and adds what it published itself the moment it is
acknowledged. A restart therefore cannot accept a duplicate of anything acknowledged before it. A per-certificate
lock makes two identical requests racing each other publish once. (Several gateway instances each keep their own
index: a certificate sent to two of them within the follower's lag would be published twice, the same content
both times, which the case processor treats as the duplicate it is.)
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from pydantic import ConfigDict, ValidationError

from consumers.clinic_keys import ClinicKeys
from consumers.follower import FollowerError, TopicFollower
from producers.errors import BrokerUnavailable, DeliveryError, InvalidEvent, PublishError, RegistryUnreachable
from producers.sdk import DeliveryResult, Publisher
from schemas import models
from schemas.signature import SignatureError, content_hash
from topology.catalogue import HEALTH_EXAM_RESULTS, Catalogue
from topology.rules import load_rule_set

log = logging.getLogger(__name__)

#: Seconds a client should wait before trying again after a 503.
RETRY_AFTER_S = 5
#: Items in one POST /v1/certificates:batch.
MAX_BATCH_ITEMS = 500


class CertificateBody(models.HealthCertificate):
    """A HealthCertificate as JSON: the Avro contract's field names; `signature` in base64 (standard or url-safe);
    timestamps ISO 8601 with an offset (e.g. 2026-03-01T08:30:00+07:00)."""

    model_config = ConfigDict(val_json_bytes="base64", ser_json_bytes="base64", title="HealthCertificate")


@dataclass(frozen=True)
class Verdict:
    """An answer: HTTP status, JSON body, extra headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


#: Vietnamese text for each refusal code (the English `message` says the detail).
VIETNAMESE = {
    "malformed_json": "Nội dung gửi lên không phải JSON hợp lệ.",
    "invalid_field": "Dữ liệu giấy khám sức khỏe không hợp lệ.",
    "not_your_clinic": "Mã cơ sở khám (clinic_code) không phải của đơn vị gửi.",
    "signature": "Chữ ký số của giấy khám sức khỏe không hợp lệ.",
    "conflict": "Số giấy khám sức khỏe này đã được gửi với nội dung khác.",
    "unavailable": "Hệ thống tạm thời không tiếp nhận được, vui lòng gửi lại sau.",
    "unauthorized": "Thiếu hoặc sai khóa API của cơ sở khám.",
    "too_large": "Nội dung gửi lên vượt quá giới hạn cho phép.",
    "not_found": "Không tìm thấy giấy khám sức khỏe.",
}


def refusal(status: int, code: str, message: str, *, field_name: str | None = None, rule: str | None = None,
            headers: dict[str, str] | None = None) -> Verdict:
    body: dict[str, Any] = {"error": code, "message": message, "thong_bao": VIETNAMESE[code]}
    if field_name is not None:
        body.update(field=field_name, rule=rule)
    return Verdict(status, body, headers or {})


def unavailable(what: str) -> Verdict:
    return refusal(503, "unavailable", f"{what}; nothing was accepted, send it again",
                   headers={"Retry-After": str(RETRY_AFTER_S)})


@dataclass(frozen=True)
class Entry:
    """One certificate version on the topic, as the index remembers it (no personal data)."""

    content_hash: str
    event_id: str
    partition: int
    offset: int


class CertificateIndex:
    """(certificate number, version kind) -> the first Entry seen for it. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], Entry] = {}

    def get(self, number: str, kind: str) -> Entry | None:
        with self._lock:
            return self._entries.get((number, kind))

    def add(self, number: str, kind: str, entry: Entry) -> None:
        with self._lock:
            self._entries.setdefault((number, kind), entry)

    def __len__(self) -> int:
        return len(self._entries)

    def versions(self, number: str) -> dict[str, Entry]:
        with self._lock:
            return {kind: e for (n, kind), e in self._entries.items() if n == number}

    def apply(self, record, event) -> None:
        """A record read from health.exam-results."""
        if isinstance(event, models.HealthCertificate):
            try:
                digest = content_hash(event)
            except SignatureError:  # a field with a line break: cannot be the same as anything signed
                return
            self.add(event.certificate_number, event.version_kind,
                     Entry(digest, event.event_id, record.partition, record.offset))


class Gateway:
    """The decisions of `gplx-bus clinic serve`, shared by its HTTP routes."""

    def __init__(self, publisher: Publisher, keys: ClinicKeys, index: CertificateIndex, *,
                 delivery_timeout_s: float = 10.0, new_publisher: Callable[[], Publisher] | None = None) -> None:
        self.publisher = publisher
        # Why a new publisher after a failed delivery: kafka-python's idempotent producer, once its batches expired
        # during a broker outage, kept failing after the broker was back (seen: 503s 90 s after the restart).
        # The next request after a failure builds a fresh one; while the broker is still away that fails at once
        # (the SDK's connection probe), the request is answered 503 and the next one tries again.
        self._new_publisher = new_publisher
        self._stale = False
        self._swap_lock = threading.Lock()
        self.delivery_timeout_s = delivery_timeout_s  # as the publisher's: how long a batch waits, in all
        self.keys = keys
        self.index = index
        self._skew = load_rule_set().certificate_clock_skew
        self._locks: defaultdict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)
        self._locks_guard = threading.Lock()

    # ---- submitting ----

    def submit(self, item: Any, clinic: str) -> Verdict:
        checked = self.check(item, clinic)
        if isinstance(checked, Verdict):
            return checked
        with self._lock_for(checked):
            known = self._known(checked)
            if known is not None:
                return known
            try:
                delivery = self._fresh_publisher().publish(checked)
            except PublishError as exc:
                log.warning("certificate not acknowledged by Kafka: %s", type(exc).__name__)
                return self._failed(exc)
            return self._accepted(checked, delivery)

    def submit_batch(self, items: list[Any], clinic: str) -> list[Verdict]:
        """Per-item verdicts, in order. Valid new items are sent together and each is answered 202 only once its
        own acknowledgement came back; an item the broker did not acknowledge is 503 (send it again: the index
        makes a repeat of one that did land a duplicate answer, not a second record)."""
        verdicts: list[Verdict | None] = [None] * len(items)
        checked: dict[int, models.HealthCertificate] = {}
        for i, item in enumerate(items):
            result = self.check(item, clinic)
            if isinstance(result, Verdict):
                verdicts[i] = result
            else:
                checked[i] = result
        locks = [self._lock_for(c) for c in {(c.certificate_number, c.version_kind): c
                                             for c in checked.values()}.values()]
        locks.sort(key=id)  # one order for every batch: no deadlock between two batches
        for lock in locks:
            lock.acquire()
        try:
            pending = {}
            try:
                publisher = self._fresh_publisher()
            except PublishError as exc:
                publisher, failed = None, self._failed(exc)
            sent: set[tuple[str, str]] = set()  # a later item of the batch with the same number and kind is
            for i, cert in checked.items():     # answered from the index once the first is decided
                key = (cert.certificate_number, cert.version_kind)
                if key in sent or self._known(cert) is not None:
                    continue
                sent.add(key)
                if publisher is None:
                    verdicts[i] = failed
                    continue
                try:
                    pending[i] = publisher.send(cert)
                except PublishError as exc:
                    verdicts[i] = self._failed(exc)
            deadline = time.monotonic() + self.delivery_timeout_s  # one wait for the whole batch
            for i, delivery in pending.items():
                try:
                    result = delivery.result(timeout_s=max(0.001, deadline - time.monotonic()))
                    verdicts[i] = self._accepted(checked[i], result)
                except PublishError as exc:
                    verdicts[i] = self._failed(exc)
            for i, cert in checked.items():
                if verdicts[i] is None:
                    verdicts[i] = self._known(cert) or unavailable("the first copy of this item in the batch failed")
        finally:
            for lock in locks:
                lock.release()
        unavailable_items = sum(v.status == 503 for v in verdicts)
        if unavailable_items:
            log.warning("batch: %d of %d items not acknowledged by Kafka (answered 503)", unavailable_items,
                        len(items))
        return verdicts  # type: ignore[return-value]

    def check(self, item: Any, clinic: str) -> "models.HealthCertificate | Verdict":
        """The certificate if it may be published for `clinic`, else the refusal (nothing is published)."""
        if not isinstance(item, dict):
            return refusal(422, "invalid_field", "a certificate must be a JSON object", field_name="(body)",
                           rule="object")
        try:
            body = CertificateBody.model_validate_json(json.dumps(item))
        except ValidationError as exc:
            err = exc.errors(include_input=False, include_url=False)[0]
            where = ".".join(str(p) for p in err["loc"]) or "(record)"
            return refusal(422, "invalid_field", f"field '{where}' breaks rule {err['type']}: {err['msg']}",
                           field_name=where, rule=err["type"])
        cert = models.HealthCertificate.model_validate(body.model_dump())
        if cert.clinic_code != clinic:
            return refusal(403, "not_your_clinic", f"clinic_code {cert.clinic_code} is not the calling clinic's "
                           f"({clinic}): a clinic publishes only its own certificates", field_name="clinic_code",
                           rule="own_clinic")
        now = datetime.now(timezone.utc)
        if cert.signed_at > now + self._skew:
            return refusal(422, "invalid_field", f"signed_at is more than {self._skew} in the future",
                           field_name="signed_at", rule="signed_in_future")
        if cert.signature_key_id is None:
            return refusal(422, "signature", "signature_key_id is missing: the gateway takes signed certificates "
                           "only", field_name="signature_key_id", rule="signature_required")
        try:
            reason = self.keys.refusal(cert, now)
        except FollowerError:  # clinics.keys could not be read: no verdict on the signature without it
            return unavailable("the clinic keys cannot be read from Kafka")
        key = self.keys.book.get(cert.clinic_code, cert.signature_key_id)
        if reason is None and key is not None and key.revoked_at is not None:
            reason = f"key {key.key_id} of clinic {cert.clinic_code} is revoked: sign with a current key"
        if reason is not None:
            return refusal(422, "signature", reason, field_name="signature", rule="signature_valid")
        return cert

    # ---- reading ----

    def state(self, number: str, clinic: str) -> Verdict:
        versions = self.index.versions(number)
        facility = number.split("/")[2] if number.count("/") == 3 else None
        if not versions or facility != clinic:  # another clinic's certificate is "not found" for this one
            return refusal(404, "not_found", "no certificate with this number from your clinic on the bus")
        status = "revoked" if "REVOKE" in versions else "superseded" if "EDIT" in versions else "accepted"
        return Verdict(200, {"certificate_number": number, "status": status, "versions": [
            {"version_kind": kind, "event_id": e.event_id, "partition": e.partition, "offset": e.offset}
            for kind, e in sorted(versions.items(), key=lambda kv: (kv[1].partition, kv[1].offset))]})

    # ---- internals ----

    def _lock_for(self, cert: models.HealthCertificate) -> threading.Lock:
        with self._locks_guard:
            return self._locks[(cert.certificate_number, cert.version_kind)]

    def _known(self, cert: models.HealthCertificate) -> Verdict | None:
        entry = self.index.get(cert.certificate_number, cert.version_kind)
        if entry is None:
            return None
        if entry.content_hash != content_hash(cert):
            return refusal(409, "conflict", f"certificate {cert.certificate_number} {cert.version_kind} was already "
                           f"accepted with other content (event {entry.event_id}); send an EDIT or REVOKE instead")
        return Verdict(202, {"event_id": entry.event_id, "duplicate": True, "partition": entry.partition,
                             "offset": entry.offset})

    def _accepted(self, cert: models.HealthCertificate, delivery: DeliveryResult) -> Verdict:
        entry = Entry(content_hash(cert), delivery.event_id, delivery.partition, delivery.offset)
        self.index.add(cert.certificate_number, cert.version_kind, entry)
        return Verdict(202, {"event_id": delivery.event_id, "duplicate": False, "partition": delivery.partition,
                             "offset": delivery.offset})

    def _fresh_publisher(self) -> Publisher:
        """The publisher, replaced first if a delivery failed since it was made (PublishError if Kafka is away)."""
        if not self._stale or self._new_publisher is None:
            return self.publisher
        with self._swap_lock:
            if self._stale:
                fresh = self._new_publisher()  # raises while the broker is still down: stays stale
                old, self.publisher, self._stale = self.publisher, fresh, False
                log.info("gateway: a new Kafka producer after a failed delivery")
                try:  # what the old one still holds was never answered 202
                    old.close(timeout_s=0)
                except Exception:  # noqa: BLE001 - a producer whose broker went away may raise on close
                    log.debug("closing the old producer failed", exc_info=True)
        return self.publisher

    def _failed(self, exc: PublishError) -> Verdict:
        if isinstance(exc, InvalidEvent):
            return refusal(422, "invalid_field", str(exc))
        if isinstance(exc, (BrokerUnavailable, DeliveryError)):
            self._stale = True
        if isinstance(exc, (BrokerUnavailable, DeliveryError, RegistryUnreachable)):
            return unavailable("Kafka or the schema registry is unavailable")
        return unavailable(type(exc).__name__)


def follow_certificates(connection, registry, catalogue: Catalogue, index: CertificateIndex) -> TopicFollower:
    """The follower that fills `index` from health.exam-results (started by the caller)."""
    return TopicFollower(connection, registry, catalogue.name(HEALTH_EXAM_RESULTS), index.apply,
                         name="gateway-index")
