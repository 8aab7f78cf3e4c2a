"""Outbound HTTP with a total deadline per request, cut short when the caller is asked to stop.

Here, in the leaf package, because every HTTP client of ours uses it: the schema registry client, the portal
sink's client and the subscriber's webhook.

Why not httpx's timeout alone: its timeouts are per operation (connect, each read, each write). A server that
answers one byte every 5 s never trips a 10 s read timeout, and kept `subscribe --output <webhook>` for 200 s,
deaf to SIGTERM. Here the request runs on a helper thread and the caller waits at most `total_s` (or until
`stop` is set); then the client is closed under the request (which ends it) and replaced for the next call.
"""
from __future__ import annotations

import threading
import time
from typing import Any

import httpx


class DeadlineExceeded(httpx.TimeoutException):
    """No complete answer within the total deadline, or the caller was asked to stop. A transport error, so
    callers retry it like any other."""


class DeadlineClient:
    def __init__(self, *, total_s: float = 10.0, stop: threading.Event | None = None,
                 transport: httpx.BaseTransport | None = None, **httpx_options: Any) -> None:
        self.total_s = total_s
        self._stop = stop or threading.Event()
        self._transport = transport
        self._options = {"timeout": total_s, **httpx_options}  # per-operation timeouts stay as a first line
        self._client = self._new_client()

    def _new_client(self) -> httpx.Client:
        return httpx.Client(transport=self._transport, **self._options)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        client, outcome, done = self._client, {}, threading.Event()

        def run() -> None:
            try:
                outcome["response"] = client.request(method, url, **kwargs)  # reads the whole body
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                outcome["error"] = exc
            finally:
                done.set()

        threading.Thread(target=run, name="http-deadline", daemon=True).start()
        deadline = time.monotonic() + self.total_s
        while not done.wait(min(0.1, max(0.0, deadline - time.monotonic()))):
            if self._stop.is_set() or time.monotonic() >= deadline:
                self._client = self._new_client()
                threading.Thread(target=client.close, name="http-abandon", daemon=True).start()
                why = "stopped" if self._stop.is_set() else f"no complete answer within {self.total_s:g}s"
                raise DeadlineExceeded(f"{method} {url}: {why}")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["response"]

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def close(self) -> None:
        self._client.close()
