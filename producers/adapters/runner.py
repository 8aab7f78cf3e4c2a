"""Run the request/answer adapters (identity, police, payment refunds) together, in threads of one process.

Why threads: each adapter is one blocking consumer loop doing little work per request; three threads sharing one
idempotent Publisher are the simplest thing that keeps up with a province's day. `AdapterSet` is the in-process
API for the demo and tests; `gplx-bus adapters run` wraps it until Ctrl-C.

    with AdapterSet(bootstrap, registry_url, catalogue=cat, data_dir="gplx-data") as adapters:
        ...  # requests published now are answered
        adapters.stats()   # {"identity": ResponderStats(requests=.., answers=..), ...}
"""
from __future__ import annotations

import logging
from pathlib import Path

from producers.adapters import identity, payment, police
from producers.adapters.localdb import JsonLinesDatabase
from producers.adapters.responder import Responder, ResponderStats
from producers.sdk import Publisher
from schemas import models
from schemas.registry import RegistryClient
from schemas.serde import SchemaRegistry
from topology import catalogue as topics
from topology import contracts
from topology.catalogue import Catalogue, consumer_group
from topology.connection import Connection

log = logging.getLogger(__name__)

#: Where the simulator writes, and the adapters read, their local databases unless told otherwise.
DEFAULT_DATA_DIR = Path("gplx-data")
IDENTITY_DB = "identity.jsonl"
POLICE_DB = "police.jsonl"
PAYMENT_LEDGER = "payments.jsonl"


class AdapterSet:
    """The identity, police and payment-refund adapters; `start()` connects all (or raises), `stop()` ends all."""

    def __init__(self, bootstrap_servers: str | Connection, registry: str | SchemaRegistry, *,
                 catalogue: Catalogue | None = None, data_dir: str | Path = DEFAULT_DATA_DIR,
                 identity_db: str | Path | None = None, police_db: str | Path | None = None,
                 payment_ledger: str | Path | None = None, run_identity: bool = True, run_police: bool = True,
                 run_payment: bool = True, connect_timeout_s: float = 10.0) -> None:
        data_dir = Path(data_dir)
        self.catalogue = catalogue or Catalogue.build()
        self.identity_db = Path(identity_db or data_dir / IDENTITY_DB)
        self.police_db = Path(police_db or data_dir / POLICE_DB)
        self.payment_ledger = Path(payment_ledger or data_dir / PAYMENT_LEDGER)
        self._bootstrap = bootstrap_servers
        self._registry_arg = registry
        self._want = {"identity": run_identity, "police": run_police, "payment": run_payment}
        self._timeout = connect_timeout_s
        self._publisher: Publisher | None = None
        self._registry: SchemaRegistry | None = None
        self.responders: dict[str, Responder] = {}
        self.gateway: payment.PaymentGateway | None = None

    def start(self) -> "AdapterSet":
        registry = self._registry_arg
        if isinstance(registry, str):
            registry = RegistryClient(registry, timeout=self._timeout,
                                      auth=Connection.of(self._bootstrap).registry_auth)
        self._registry = registry
        self._publisher = Publisher(self._bootstrap, registry, catalogue=self.catalogue,
                                    client_id="gplx-adapters", connect_timeout_s=self._timeout, linger_ms=0)
        try:
            for name, principal in (("identity", topics.IDENTITY), ("police", topics.POLICE),
                                    ("payment", topics.PAYMENT)):
                if self._want[name]:  # refuse to start on a contract the operator has not registered; a registry
                    # outage is waited out by the responders' loop, as by the processor and the sink
                    contracts.check_registered(registry, self.catalogue, writer=principal, outage_ok=True)
            for responder in self._build():
                responder.start()
                self.responders[responder.name] = responder
        except Exception:
            self.stop()
            raise
        return self

    def stop(self, timeout_s: float = 15.0) -> None:
        for responder in self.responders.values():
            responder.stop(timeout_s)
        if self._publisher is not None:
            self._publisher.close()
            self._publisher = None
        if isinstance(self._registry_arg, str) and self._registry is not None:
            self._registry.close()
        self._registry = None

    def stats(self) -> dict[str, ResponderStats]:
        return {name: r.stats for name, r in self.responders.items()}

    def __enter__(self) -> "AdapterSet":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- wiring --------------------------------------------------------------------------------------------
    def _build(self) -> list[Responder]:
        cat, out = self.catalogue, []
        common = dict(bootstrap_servers=self._bootstrap, registry=self._registry, publisher=self._publisher,
                      connect_timeout_s=self._timeout, dlq_topic=cat.name(topics.DLQ))
        if self._want["identity"]:
            db = JsonLinesDatabase(self.identity_db)
            out.append(Responder("identity", request_topic=cat.name(topics.IDENTITY_REQUESTS),
                                 group_id=cat.prefix + consumer_group(topics.IDENTITY),
                                 handle=lambda r: [identity.answer(r, db)],
                                 request_type=models.IdentityCheckRequested, **common))
        if self._want["police"]:
            db_police = JsonLinesDatabase(self.police_db)
            out.append(Responder("police", request_topic=cat.name(topics.POLICE_REQUESTS),
                                 group_id=cat.prefix + consumer_group(topics.POLICE),
                                 handle=lambda r: [police.answer(r, db_police)],
                                 request_type=models.LicenceLookupRequested, **common))
        if self._want["payment"]:
            self.gateway = payment.PaymentGateway(payment.PaymentLedger(self.payment_ledger))
            out.append(Responder("payment", request_topic=cat.name(topics.PAYMENT_REFUND_REQUESTS),
                                 group_id=cat.prefix + consumer_group(topics.PAYMENT),
                                 handle=self.gateway.refund, on_published=self.gateway.refund_published,
                                 request_type=models.RefundRequested, **common))
        return out
