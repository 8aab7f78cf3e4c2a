"""The portal issuance sink: IssuanceRequested from `issuance.requests` -> POST /issuances at the national portal.

Promises, and how they are kept:
- never loses an issuance: the offset of a record is committed only after the portal accepted it or after it was
  dead-lettered (DLQ + IssuanceDeliveryFailed acknowledged by the broker with acks=all). A crash in between means
  the record is read and sent again;
- issues each licence once: every POST carries `Idempotency-Key: <issuance_id>` (deterministic, from the case), so
  the copies that at-least-once delivery makes are recognised by the portal;
- survives a portal outage: failed attempts are retried with jittered exponential backoff, up to `max_attempts`
  (by default minutes of outage, see MAX_ATTEMPTS); then the request goes to the DLQ and the case shows
  IssuanceDeliveryFailed. A 4xx other than 408/425/429 is not retried (the portal will never take that request)
  and is dead-lettered at once;
- is who it says it is: with `credentials` every POST carries the bearer key id, a timestamp and the HMAC-SHA256
  of its exact body (`consumers.portal.signing`). A 401 (wrong secret, unknown key id, clock more than 5 minutes
  off) is such a 4xx: dead-lettered at once with the portal's one-line reason, then `gplx-bus dlq replay` once fixed.

Up to `concurrency` issuances at once (default CONCURRENCY): the portal call dominates, and one at a time capped the
sink at ~30 a second on this machine, under the ~34 approvals a second of a 50 cases/s day (a slower portal caps
it lower still). The loop reads that many records, hands each to a delivery thread, and commits only once every
one of them was accepted or dead-lettered, so "committed" still means "delivered". Within a batch, deliveries may
finish out of order (issuances are independent; two copies of one issuance id in a batch are delivered once); a
failing one holds the commit, and the partition, until it is delivered or given up. max.poll.interval is sized to
the longest retry sequence, so a long outage does not get the sink thrown out of its group mid-retry.

This file is the sink's `act` (deliver, retry, give up) and its wiring; decoding, dead-lettering undecodable
records, waiting out a registry outage and committing after the effect are the shared `consumers.loop`. Kafka
errors while dead-lettering (broker down) end `run()` with the exception and without a commit: the record stays
for the next start. `stop` interrupts a backoff wait at once; the record being retried is then not committed and
is delivered on the next start.

    stop = threading.Event()
    sink = IssuanceSink(bootstrap, registry_url, portal.url)
    thread = threading.Thread(target=sink.run, args=(stop,)); thread.start()  # or sink.start()/sink.stop()
"""
from __future__ import annotations

import logging
import random
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from schemas import models
from schemas.errors import DlqCode
from schemas.registry import RegistryClient
from schemas.serde import SchemaRegistry
from topology import contracts
from topology.catalogue import CASES_EVENTS, DLQ, ISSUANCE_REQUESTS, PORTAL, Catalogue, consumer_group
from topology.connection import Connection

from consumers.loop import ConsumeLoop, LoopStats, Stopped
from consumers.portal import deadletter
from consumers.backoff import Backoff
from consumers.portal.client import PortalClient
from consumers.portal.signing import PortalCredentials

log = logging.getLogger(__name__)


@dataclass
class SinkStats:
    """Counters of one sink; read them from any thread (plain ints, updated by the sink's thread only)."""

    delivered: int = 0  # issuances the portal accepted
    attempts: int = 0  # POSTs made
    failed_attempts: int = 0
    joined: int = 0  # copies of an issuance read while it was being delivered: settled by that delivery
    loop: LoopStats = field(default_factory=LoopStats, repr=False)

    @property
    def dead_lettered(self) -> int:  # records sent to the DLQ (delivery given up, or undecodable)
        return self.loop.dead_lettered

    @property
    def undecodable(self) -> int:
        return self.loop.undecodable

    @property
    def commit_failures(self) -> int:
        return self.loop.commit_failures

    @property
    def errors(self) -> list[str]:  # why run() ended, if it ended on an error
        return self.loop.errors


#: Attempts before the DLQ. With the default backoff (0.5 s doubling to 30 s, up to half of each wait random) the
#: portal may fail 3.5 to 7 minutes on end before an issuance is dead-lettered. 6 attempts (before session 7) gave up
#: after 8-15 s: the faults harness's 60 s down then 30 s of 5xx dead-lettered 7 of 69 issuances.
MAX_ATTEMPTS = 20

#: Issuances in flight at once (see the module docstring). Measured in the faults soak: one at a time did ~30 a second.
CONCURRENCY = 8


class IssuanceSink:
    """Consumes IssuanceRequested (consumer group `portal`, the catalogue's reader of issuance.requests) and
    delivers each to the portal; see the module docstring for the guarantees."""

    def __init__(self, bootstrap_servers: str | Connection, registry: str | SchemaRegistry, portal_url: str, *,
                 prefix: str = "", catalogue: Catalogue | None = None, group_id: str | None = None,
                 max_attempts: int = MAX_ATTEMPTS, backoff: Backoff | None = None, request_timeout_s: float = 10.0,
                 auto_register: bool = False, rng: random.Random | None = None,
                 connect_timeout_s: float = 10.0, credentials: PortalCredentials | None = None,
                 portal_verify: object = True, concurrency: int = CONCURRENCY) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.catalogue = catalogue or Catalogue.build(prefix=prefix)
        self.topic = self.catalogue.name(ISSUANCE_REQUESTS)
        self.group_id = group_id or self.catalogue.prefix + consumer_group(PORTAL)
        self.portal_url = portal_url
        self.max_attempts = max_attempts
        self.backoff = backoff or Backoff(base_s=0.5, max_s=30.0, jitter=0.5)
        self._request_timeout_s = request_timeout_s
        self._credentials = credentials  # its repr hides the secret
        self._portal_verify = portal_verify  # httpx's verify: True, a CA file or an SSLContext
        self._rng = rng or random.Random()
        if isinstance(registry, str):
            registry = RegistryClient(registry, auth=Connection.of(bootstrap_servers).registry_auth)
        worst_s = max_attempts * request_timeout_s + self.backoff.worst_case(max_attempts) + 60
        self.loop = ConsumeLoop(
            "portal-sink", connection=bootstrap_servers, registry=registry, topic=self.topic,
            group_id=self.group_id, act=self.act, expects=models.IssuanceRequested,
            dlq_topic=self.catalogue.name(DLQ), source=deadletter.SOURCE,
            max_poll_records=concurrency,  # one delivery thread per record of a poll; committed once all are done
            max_poll_interval_ms=max(300_000, int(worst_s * 1000)), backoff=self.backoff,
            connect_timeout_s=connect_timeout_s, auto_register=auto_register, rng=self._rng)
        self.stats = SinkStats(loop=self.loop.stats)
        self._registry = registry
        self._client: PortalClient | None = None
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="portal-delivery")
        self._in_flight: dict[str, Future] = {}  # issuance id -> its delivery, while it runs
        # The counters and _in_flight, written from the delivery threads. Re-entrant: add_done_callback on a
        # delivery already finished runs _forget at once, in act's thread, which holds the lock.
        self._lock = threading.RLock()

    # ---- control: start()/stop() (a daemon thread, the demo) or run(stop) (the command) ----

    def start(self) -> "IssuanceSink":
        self._open_client()
        self.loop.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> SinkStats:
        self.loop.stop(timeout_s)
        self._close_client()
        return self.stats

    def run(self, stop: threading.Event) -> SinkStats:
        """Consume and deliver until `stop` is set."""
        self._open_client(stop)
        try:
            self.loop.run(stop)
        finally:
            self._close_client()
        return self.stats

    def _open_client(self, stop: threading.Event | None = None) -> None:
        # Lookup only: a contract the operator never registered is named now, not at the first issuance.
        contracts.check_registered(self._registry, self.catalogue, writer=PORTAL, outage_ok=True)
        self._client = PortalClient(self.portal_url, timeout_s=self._request_timeout_s,
                                    stop=stop or self.loop.stopping, credentials=self._credentials,
                                    verify=self._portal_verify)
        log.info("portal sink: %s (group %s) -> %s, %d attempts, %s", self.topic, self.group_id, self.portal_url,
                 self.max_attempts, f"signed as key id {self._credentials.key_id}" if self._credentials
                 else "UNSIGNED (no portal secret)")

    def _close_client(self) -> None:
        self._pool.shutdown(wait=True)  # the deliveries end first (a stop interrupts their backoff waits)
        if self._client is not None:
            self._client.close()
            self._client = None

    # ---- the act: deliver, or give up ----

    def act(self, record, issuance: models.IssuanceRequested) -> list[Future]:
        """Start delivering one issuance in a delivery thread; the loop waits for the returned future (with the
        batch's others) before it commits. A copy of an issuance already in flight waits for that delivery."""
        with self._lock:
            running = self._in_flight.get(issuance.issuance_id)
            if running is None:
                running = self._in_flight[issuance.issuance_id] = self._pool.submit(self.deliver, record, issuance)
                running.add_done_callback(lambda _, key=issuance.issuance_id: self._forget(key))
            else:
                self.stats.joined += 1
        return [running]

    def _forget(self, issuance_id: str) -> None:
        with self._lock:
            self._in_flight.pop(issuance_id, None)

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self.stats, name, getattr(self.stats, name) + 1)

    def deliver(self, record, issuance: models.IssuanceRequested) -> None:
        """Deliver one issuance, retrying; dead-letter it once given up. Raises Stopped if stopped in between."""
        last_error = ""
        for attempt in range(1, self.max_attempts + 1):
            self._count("attempts")
            outcome = self._client.deliver(issuance)
            if outcome.delivered:
                self._count("delivered")
                log.info("issuance %s delivered (attempt %d, HTTP %s)", issuance.issuance_id, attempt,
                         outcome.status)
                return
            self._count("failed_attempts")
            last_error = outcome.error
            log.warning("issuance %s: attempt %d/%d failed: %s", issuance.issuance_id, attempt, self.max_attempts,
                        outcome.error)
            if not outcome.retryable:
                break
            # Pacing between attempts (not synchronisation); set() on stop ends the wait at once.
            if attempt < self.max_attempts and self.loop.stopping.wait(self.backoff.delay(attempt, self._rng)):
                raise Stopped
        self._give_up(record, issuance, attempts=attempt, last_error=last_error)

    def _give_up(self, record, issuance: models.IssuanceRequested, *, attempts: int, last_error: str) -> None:
        """DLQ envelope + IssuanceDeliveryFailed on cases.events and the province's topic, all acknowledged."""
        text = (f"portal delivery of issuance {issuance.issuance_id} failed after {attempts} attempt(s); "
                f"last error: {last_error}")
        failed = deadletter.delivery_failed(issuance, attempts=attempts, last_error=last_error)
        topics = [self.catalogue.name(CASES_EVENTS)]
        try:
            topics.append(self.catalogue.province_topic(issuance.province))
        except KeyError:
            log.warning("no topic for province %s in this catalogue; failure recorded on %s only",
                        issuance.province, topics[0])
        self.loop.dead_letters.send(record, DlqCode.PROCESSING_FAILED, text, correlation_id=issuance.case_id,
                                    events=[(topic, issuance.cccd, failed) for topic in topics])
        with self._lock:
            self.loop.stats.dead_lettered += 1
        log.error("issuance %s dead-lettered after %d attempt(s): %s", issuance.issuance_id, attempts, last_error)
