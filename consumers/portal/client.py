"""HTTP client of the national portal's issuance API: one POST per issuance, with its Idempotency-Key.

Why the key is the issuance id: the case processor derives it from the case, so every copy of the same request
(a re-delivery after a crash, a replay, a second sink instance after a rebalance) carries the same key and the
portal issues once. The client only classifies the outcome; retrying is the sink's business.

With credentials, every attempt is signed anew (`consumers.portal.signing`: bearer key id, timestamp, HMAC of the
exact body bytes sent). A 401 is not retried like any other 4xx: the same request would be refused again (wrong
secret, unknown key id, a clock more than 5 minutes off); its one-line reason goes into the outcome's error.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

import httpx

from schemas.http import DeadlineClient
from consumers.portal.signing import PortalCredentials, sign
from schemas.models import IssuanceRequested


@dataclass(frozen=True)
class Outcome:
    """Result of one attempt: delivered, or failed (retryable or not) with a short error text (no PII)."""

    delivered: bool
    retryable: bool = False
    error: str = ""
    status: int | None = None


class PortalClient:
    """POST {portal_url}/issuances with JSON body and header `Idempotency-Key: <issuance_id>`, signed when
    `credentials` are given. `verify` is httpx's: True (system CAs), a CA bundle path or an SSLContext."""

    def __init__(self, portal_url: str, *, timeout_s: float = 10.0, stop: threading.Event | None = None,
                 transport: httpx.BaseTransport | None = None, credentials: PortalCredentials | None = None,
                 verify: Any = True) -> None:
        self.url = portal_url.rstrip("/") + "/issuances"
        self._credentials = credentials
        self._http = DeadlineClient(total_s=timeout_s, stop=stop, transport=transport,  # a total, not per read
                                    verify=verify)

    def deliver(self, issuance: IssuanceRequested) -> Outcome:
        # The body is serialised here, once, so the bytes signed are the bytes sent.
        body = json.dumps(issuance.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Idempotency-Key": issuance.issuance_id, "Content-Type": "application/json"}
        if self._credentials is not None:
            headers.update(sign(self._credentials, body))
        try:
            response = self._http.post(self.url, content=body, headers=headers)
        except httpx.TransportError as exc:  # refused, reset, timed out: the portal may be back soon
            return Outcome(False, retryable=True, error=f"{type(exc).__name__} from {self.url}")
        if response.is_success:
            return Outcome(True, status=response.status_code)
        # 408/429/5xx are the portal's temporary trouble; other 4xx mean this request will never be taken.
        retryable = response.status_code in (408, 425, 429) or response.status_code >= 500
        error = f"HTTP {response.status_code} from {self.url}"
        if response.status_code == 401:  # the scheme's reasons are fixed phrases: no PII, no secret
            error += f": {_reason(response)}"
        return Outcome(False, retryable=retryable, error=error, status=response.status_code)

    def close(self) -> None:
        self._http.close()


def _reason(response: httpx.Response) -> str:
    """The portal's one-line reason (JSON {"error": ...}), at most 200 printable characters."""
    try:
        reason = response.json().get("error")
    except (ValueError, AttributeError):
        reason = None
    first_line = (str(reason).splitlines() or [""])[0] if reason else ""
    return "".join(c if c.isprintable() else " " for c in first_line)[:200] or "unauthorized (no reason given)"
