"""The clinic keys of the compacted `clinics.keys` topic, followed live: what the gateway and the case processor
verify signed health certificates against (rules in `schemas.signature`), and the operator's `keys add|revoke`.

A key is published by `gplx-bus clinic keys add CODE --public-key FILE` and revoked by `... revoke CODE --key-id K`;
the record key is `<clinic code>/<key id>`, so compaction keeps each key's latest state (revoked keys included:
certificates they signed before their revocation stay valid).
"""
from __future__ import annotations

import threading
from datetime import datetime, timezone

from producers.ids import derived_id
from producers.sdk import Publisher
from schemas import models, signature
from schemas.errors import SignatureInvalid
from schemas.registry import RegistryClient
from schemas.signature import KeyBook, SignatureError
from topology.catalogue import CLINICS_KEYS, Catalogue
from consumers.follower import TopicFollower
from topology.connection import Connection

SOURCE = {"system": "operator", "instance": "gplx-bus clinic keys"}


class ClinicKeys:
    """A KeyBook kept up to date from `clinics.keys` by a background reader. Thread-safe."""

    def __init__(self, connection: Connection, catalogue: Catalogue, registry: RegistryClient | None = None) -> None:
        self._lock = threading.Lock()
        self.book = KeyBook()
        self._registry = registry or RegistryClient(connection.registry_url, auth=connection.registry_auth)
        self._follower = TopicFollower(connection, self._registry, catalogue.name(CLINICS_KEYS), self._apply,
                                       name="clinic-keys")
        self._started = False

    def start(self, timeout_s: float = 30.0) -> "ClinicKeys":
        """Start following (once) and wait until every key on the topic now is known."""
        with self._lock:
            if not self._started:
                self._follower.start()
                self._started = True
        self._follower.catch_up(timeout_s)
        return self

    @property
    def alive(self) -> bool:
        return self._follower.alive

    def catch_up(self, timeout_s: float = 10.0) -> None:
        self._follower.catch_up(timeout_s)

    def close(self) -> None:
        if self._started:
            self._follower.close()

    def _apply(self, record, event) -> None:
        if isinstance(event, models.ClinicKey):
            with self._lock:
                self.book.apply(event)

    def refusal(self, cert, arrival: datetime, *, as_of_arrival: bool = False) -> str | None:
        """Why `cert`, on the bus since `arrival`, is not validly signed (see schemas.signature).

        `as_of_arrival` (the case processor): first wait until every key record appended before `arrival` has
        been read, so the verdict is the one a replay will give. Otherwise (the gateway, arrival = now) the keys
        read so far, after reading any key published since the last look if it names a key not seen yet."""
        if not self._started:
            self.start()
        if as_of_arrival:
            self._follower.wait_complete_as_of(arrival.timestamp())
        else:
            with self._lock:
                known = self.book.knows(cert)
            if not known:
                self.catch_up()
        with self._lock:
            return self.book.refusal(cert, arrival)

    def ready_as_of(self, arrival: datetime) -> bool:
        """True when `refuse_unverified(.., arrival)` will not block: following, and every key record appended
        before `arrival` read already (the case processor then checks on its event loop, without a thread hop)."""
        return self._started and self._follower.complete_as_of(arrival.timestamp())

    def confirm_as_of(self, moment: float, ends: dict[int, int]) -> bool:
        """`ends`: the end offsets of `clinics.keys` (partition -> offset) the broker gave in answer to a request
        sent at `moment` (Unix seconds) or later. True when the keys are read that far: then `ready_as_of` holds
        for every arrival up to `moment` (the case processor asks this rather than wait for the follower's next
        rounds; see TopicFollower.confirm_as_of)."""
        return self._started and self._follower.confirm_as_of(moment, ends)

    @property
    def started(self) -> bool:
        return self._started

    def refuse_unverified(self, item, arrival: datetime) -> None:
        """For the case processor: SignatureInvalid (a dead letter) for a HealthCertificate whose signature does
        not verify; anything else passes."""
        if isinstance(item, models.HealthCertificate):
            reason = self.refusal(item, arrival, as_of_arrival=True)
            if reason is not None:
                raise SignatureInvalid(reason, schema=item.avro_name)


def publish_key(connection: Connection, catalogue: Catalogue, clinic_code: str, public_key: bytes,
                now: datetime | None = None) -> models.ClinicKey:
    """Register a clinic's public key (PEM or DER); publishing the same key again changes nothing."""
    der = signature.load_public_key(public_key)
    kid = signature.key_id(der)
    keys = ClinicKeys(connection, catalogue).start()
    try:
        known = keys.book.get(clinic_code, kid)
    finally:
        keys.close()
    if known is not None:
        raise SignatureError(f"key {kid} of clinic {clinic_code} is already registered"
                             + (" (revoked)" if known.revoked_at else ""))
    now = now or datetime.now(timezone.utc)
    event = models.ClinicKey(event_id=derived_id("clinic-key", clinic_code, kid, "add"), occurred_at=now,
                             source=SOURCE, clinic_code=clinic_code, key_id=kid, algorithm=signature.ALGORITHM,
                             public_key=der, registered_at=now, revoked_at=None)
    _publish(connection, catalogue, event)
    return event


def revoke_key(connection: Connection, catalogue: Catalogue, clinic_code: str, kid: str,
               at: datetime | None = None) -> models.ClinicKey:
    """Revoke a key from `at` (default now): certificates it signed before `at` stay valid."""
    keys = ClinicKeys(connection, catalogue).start()
    try:
        known = keys.book.get(clinic_code, kid)
    finally:
        keys.close()
    if known is None:
        raise SignatureError(f"clinic {clinic_code} has no key {kid} (gplx-bus clinic keys list)")
    at = at or datetime.now(timezone.utc)
    event = models.ClinicKey(event_id=derived_id("clinic-key", clinic_code, kid, "revoke", at.isoformat()),
                             occurred_at=datetime.now(timezone.utc), source=SOURCE, clinic_code=clinic_code,
                             key_id=kid, algorithm=signature.ALGORITHM, public_key=known.public_key,
                             registered_at=known.registered_at, revoked_at=at)
    _publish(connection, catalogue, event)
    return event


def _publish(connection: Connection, catalogue: Catalogue, event: models.ClinicKey) -> None:
    with Publisher(connection, connection.registry_url, catalogue=catalogue, client_id="gplx-clinic-keys") as pub:
        pub.publish(event, key=f"{event.clinic_code}/{event.key_id}")
