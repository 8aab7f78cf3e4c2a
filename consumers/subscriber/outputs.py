"""Where a subscriber puts each case event: a terminal table, JSON lines, or a webhook.

Each output must have *finished* with an event when `emit` returns (printed and flushed, or acknowledged by the
webhook): the subscriber commits the offset right after, and an offset committed before the output is done would
lose the event on a crash (the contract is at-least-once).
"""
from __future__ import annotations

import json
import logging
import sys
import threading
from typing import Protocol, TextIO

import httpx

from schemas.http import DeadlineClient
from consumers.backoff import Backoff
from consumers.subscriber import render
from consumers.subscriber.render import CaseView

from consumers.errors import WebhookFailed  # noqa: F401 - defined there, imported here as before

log = logging.getLogger(__name__)


class Output(Protocol):
    def emit(self, view: CaseView) -> None: ...
    def close(self) -> None: ...


class JsonlOutput:
    """One JSON object per line (codes, Vietnamese labels and the full event; CCCD unmasked)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdout

    def emit(self, view: CaseView) -> None:
        self._stream.write(json.dumps(render.to_json(view), ensure_ascii=False) + "\n")
        self._stream.flush()

    def close(self) -> None:
        self._stream.flush()


class TableOutput:
    """Aligned lines for a terminal, header once; the CCCD is masked."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdout
        self._header_done = False

    def emit(self, view: CaseView) -> None:
        if not self._header_done:
            self._stream.write(render.table_header() + "\n")
            self._header_done = True
        self._stream.write(render.table_row(view) + "\n")
        self._stream.flush()

    def close(self) -> None:
        self._stream.flush()


class WebhookOutput:
    """POST each event as JSON, header `Idempotency-Key: <event_id>` so the receiver can drop a re-delivery.

    2xx: done. 5xx, 408, 429 and network errors: retried with backoff up to `attempts`. Other 4xx: the receiver
    will never take it; WebhookFailed at once (the subscriber stops without committing, so nothing is lost).
    """

    def __init__(self, url: str, *, attempts: int = 5, backoff: Backoff | None = None, timeout_s: float = 10.0,
                 stop: threading.Event | None = None, transport: httpx.BaseTransport | None = None) -> None:
        self.url = url
        self._attempts = attempts
        self._backoff = backoff or Backoff(base_s=0.5, max_s=10.0)
        self._stop = stop or threading.Event()
        self._http = DeadlineClient(total_s=timeout_s, stop=self._stop, transport=transport)

    def emit(self, view: CaseView) -> None:
        body = render.to_json(view)
        headers = {"Idempotency-Key": view.event_id}
        last = ""
        for attempt in range(1, self._attempts + 1):
            try:
                response = self._http.post(self.url, json=body, headers=headers)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}"
            else:
                if response.is_success:
                    return
                last = f"HTTP {response.status_code}"
                if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                    break
            log.warning("webhook %s: attempt %d/%d failed (%s)", self.url, attempt, self._attempts, last)
            # Pacing between retries, cut short when the subscriber is asked to stop.
            if self._stop.is_set() or (attempt < self._attempts and self._stop.wait(self._backoff.delay(attempt))):
                break
        raise WebhookFailed(f"webhook {self.url} did not accept event {view.event_id}: {last}; "
                            f"the offset is not committed, the next run sends it again")

    def close(self) -> None:
        self._http.close()
