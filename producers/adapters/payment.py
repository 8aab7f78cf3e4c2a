"""Payment gateway adapter: publishes fee payments (PAID / FAILED) and answers RefundRequested
(payment.refund-requests) with a REFUNDED PaymentTransaction - once.

Why a ledger: "nothing is refunded twice" must hold even when a RefundRequested is delivered again (the case
processor re-emits after a crash; this adapter re-reads after its own crash). The gateway records, in an
append-only JSON-lines file, each payment it took and each refund it executed and published:
- a refund_id already published is answered with nothing (the REFUNDED event is already on the topic);
- a refund_id executed but not yet published (crash in between) is published again, identical (same event id,
  same transaction id, same time), without moving money again;
- a transaction already refunded under another refund_id is never refunded again (logged as a warning).
The ledger also answers which application a transaction paid for: RefundRequested does not carry the application
id, but the REFUNDED transaction must, so the case processor can match it to the case.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import threading
from pathlib import Path
from typing import Any

from producers.ids import derived_id
from schemas import models
from schemas.privacy import open_private

log = logging.getLogger(__name__)

SYSTEM = "payment"
#: Renewal fee in 2025 (VND); fees change by date and channel, so callers may pass their own.
RENEWAL_FEE_VND = 135_000


def payment_transaction(*, application_id: str, cccd: str, amount_vnd: int, occurred_at: dt.datetime,
                        attempt: int = 1, failure_reason: str | None = None,
                        correlation_id: str | None = None) -> models.PaymentTransaction:
    """A PAID (or, with a failure_reason, FAILED) transaction with ids fixed by the application and attempt."""
    transaction_id = "TX" + derived_id("payment-tx", application_id, attempt).replace("-", "")[:20].upper()
    return models.PaymentTransaction(
        event_id=derived_id("payment-event", transaction_id),
        occurred_at=occurred_at, source=models.Source(system=SYSTEM, instance="gateway"),
        correlation_id=correlation_id, transaction_id=transaction_id, application_id=application_id, cccd=cccd,
        status="FAILED" if failure_reason else "PAID", amount_vnd=amount_vnd,
        gateway_reference="GW" + transaction_id[2:14], failure_reason=failure_reason,
    )


class PaymentLedger:
    """The gateway's own record: payments taken and refunds executed/published. In memory, and appended to
    `path` when given (re-read on start and when a transaction is not found, so another process may add to it)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else None
        self._payments: dict[str, dict[str, Any]] = {}  # transaction_id -> payment
        self._refunds: dict[str, dict[str, Any]] = {}  # refund_id -> refund (state executed|published)
        self._refunded_tx: dict[str, str] = {}  # transaction_id -> refund_id
        self._read_upto = 0
        self._lock = threading.RLock()
        self._catch_up()

    # ---- queries --------------------------------------------------------------------------------------------
    def payment(self, transaction_id: str) -> dict[str, Any] | None:
        with self._lock:
            if transaction_id not in self._payments:
                self._catch_up()
            return self._payments.get(transaction_id)

    def refund(self, refund_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._refunds.get(refund_id)

    def refund_of(self, transaction_id: str) -> str | None:
        with self._lock:
            return self._refunded_tx.get(transaction_id)

    # ---- updates --------------------------------------------------------------------------------------------
    def record_payment(self, event: models.PaymentTransaction) -> None:
        self._append({"op": "payment", "transaction_id": event.transaction_id,
                      "application_id": event.application_id, "cccd": event.cccd, "status": event.status,
                      "amount_vnd": event.amount_vnd})

    def record_refund_executed(self, refund_id: str, event: models.PaymentTransaction, refunded_tx: str) -> None:
        self._append({"op": "refund-executed", "refund_id": refund_id, "refunded_transaction_id": refunded_tx,
                      "event": _to_json(event)})

    def record_refund_published(self, refund_id: str) -> None:
        self._append({"op": "refund-published", "refund_id": refund_id})

    # ---- storage --------------------------------------------------------------------------------------------
    def _apply(self, entry: dict[str, Any]) -> None:
        op = entry.get("op")
        if op == "payment":
            self._payments[entry["transaction_id"]] = entry
        elif op == "refund-executed":
            self._refunds[entry["refund_id"]] = {**entry, "state": "executed"}
            self._refunded_tx[entry["refunded_transaction_id"]] = entry["refund_id"]
        elif op == "refund-published" and entry["refund_id"] in self._refunds:
            self._refunds[entry["refund_id"]]["state"] = "published"

    def _append(self, entry: dict[str, Any]) -> None:
        with self._lock:
            if self.path is not None:
                self._catch_up()
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # one write per line: appends do not interleave; 0600: the ledger names citizens by CCCD
                with open_private(self.path, "a") as out:
                    out.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")
                    self._read_upto = out.tell()
            self._apply(entry)

    def _catch_up(self) -> None:
        """Apply lines another process appended since the last read."""
        if self.path is None or not self.path.exists():
            return
        with self.path.open("r", encoding="utf-8") as f:
            f.seek(self._read_upto)
            for line in f:
                if not line.endswith("\n"):
                    break  # a line still being written: read it next time
                self._read_upto += len(line.encode("utf-8"))
                if line.strip():
                    try:
                        self._apply(json.loads(line))
                    except (ValueError, KeyError):
                        log.warning("payment ledger %s: unreadable line skipped", self.path)


class PaymentGateway:
    """Answers refund requests idempotently (see the module docstring); `refund` is the Responder handler and
    `refund_published` its on_published hook."""

    def __init__(self, ledger: PaymentLedger, *, now=None) -> None:
        self.ledger = ledger
        self._now = now or (lambda: dt.datetime.now(dt.timezone.utc))

    def refund(self, request: models.RefundRequested) -> list[models.PaymentTransaction]:
        done = self.ledger.refund(request.refund_id)
        if done is not None:
            if done["state"] == "published":
                log.info("refund %s already published; duplicate request ignored", request.refund_id)
                return []
            return [_from_json(done["event"])]  # executed, answer lost in a crash: publish the same event again
        earlier = self.ledger.refund_of(request.transaction_id)
        if earlier is not None:
            log.warning("transaction already refunded under refund %s; refund %s refused", earlier,
                        request.refund_id)
            return []
        paid = self.ledger.payment(request.transaction_id)
        if paid is None or paid.get("status") != "PAID":
            # Without the original payment there is nothing to refund and no application id to report. Logged
            # for the finance team; the case keeps its refund request on payment.refund-requests.
            log.warning("refund %s: transaction unknown to the gateway or not paid; not refunded", request.refund_id)
            return []
        amount = min(request.amount_vnd, int(paid["amount_vnd"]))  # never refund more than was paid
        transaction_id = "RF" + derived_id("refund-tx", request.refund_id).replace("-", "")[:20].upper()
        event = models.PaymentTransaction(
            event_id=derived_id("refund-event", request.refund_id),
            occurred_at=self._now(), source=models.Source(system=SYSTEM, instance=socket.gethostname()),
            correlation_id=request.correlation_id or request.case_id, transaction_id=transaction_id,
            application_id=paid["application_id"], cccd=request.cccd, status="REFUNDED", amount_vnd=amount,
            gateway_reference=request.gateway_reference, failure_reason=None,
        )
        # The money moves here (simulated); recording it first is what makes a re-delivery harmless.
        self.ledger.record_refund_executed(request.refund_id, event, request.transaction_id)
        return [event]

    def refund_published(self, request: models.RefundRequested, answers: list) -> None:
        if answers:
            self.ledger.record_refund_published(request.refund_id)


def _to_json(event: models.PaymentTransaction) -> dict[str, Any]:
    return event.model_dump(mode="json")


def _from_json(data: dict[str, Any]) -> models.PaymentTransaction:
    return models.PaymentTransaction.model_validate(data)
