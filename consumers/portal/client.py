"""HTTP client of the national portal's issuance API: one POST per issuance, with its Idempotency-Key.

Why the key is the issuance id: the case processor derives it from the case, so every copy of the same request
(a re-delivery after a crash, a replay, a second sink instance after a rebalance) carries the same key and the
portal issues once. The client only classifies the outcome; retrying is the sink's business.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import httpx

from consumers.http_client import DeadlineClient
from schemas.models import IssuanceRequested


@dataclass(frozen=True)
class Outcome:
    """Result of one attempt: delivered, or failed (retryable or not) with a short error text (no PII)."""

    delivered: bool
    retryable: bool = False
    error: str = ""
    status: int | None = None


class PortalClient:
    """POST {portal_url}/issuances with JSON body and header `Idempotency-Key: <issuance_id>`."""

    def __init__(self, portal_url: str, *, timeout_s: float = 10.0, stop: threading.Event | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = portal_url.rstrip("/") + "/issuances"
        self._http = DeadlineClient(total_s=timeout_s, stop=stop, transport=transport)  # a total, not per read

    def deliver(self, issuance: IssuanceRequested) -> Outcome:
        try:
            response = self._http.post(self.url, json=issuance.model_dump(mode="json"),
                                       headers={"Idempotency-Key": issuance.issuance_id})
        except httpx.TransportError as exc:  # refused, reset, timed out: the portal may be back soon
            return Outcome(False, retryable=True, error=f"{type(exc).__name__} from {self.url}")
        if response.is_success:
            return Outcome(True, status=response.status_code)
        # 408/429/5xx are the portal's temporary trouble; other 4xx mean this request will never be taken.
        retryable = response.status_code in (408, 425, 429) or response.status_code >= 500
        return Outcome(False, retryable=retryable, error=f"HTTP {response.status_code} from {self.url}",
                       status=response.status_code)

    def close(self) -> None:
        self._http.close()
