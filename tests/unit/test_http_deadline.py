"""Outbound HTTP ends within its total deadline, against a real server on loopback that drips one byte a second
(httpx's per-read timeout alone would wait for ever), and at once when the caller is asked to stop."""
from __future__ import annotations

import datetime as dt
import socket
import uuid
import threading
import time

import httpx
import pytest

from schemas.http import DeadlineClient, DeadlineExceeded
from consumers.portal.client import PortalClient
from consumers.subscriber.outputs import WebhookFailed, WebhookOutput
from consumers.subscriber import render
from schemas import models
from tests.unit.test_portal_pieces import issuance


@pytest.fixture
def dripping_server():
    """Accepts connections and sends a valid HTTP response one byte every 0.1 s (about 4 s in all)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    closing = threading.Event()

    def drip(conn):
        with conn:
            try:
                conn.recv(65536)
                for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok":
                    if closing.wait(0.1):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                return

    def serve():
        while not closing.is_set():
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:  # the listener was closed: the test is over
                return
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    closing.set()
    listener.close()


def test_a_dripping_server_is_cut_at_the_total_deadline(dripping_server):
    client = DeadlineClient(total_s=1.0)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="no complete answer within 1s"):
        client.post(dripping_server + "/x", json={})
    assert 0.9 <= time.monotonic() - started < 2.0
    with httpx.Client(timeout=0.5) as plain:  # the per-read timeout never trips: each byte comes within 0.1 s
        assert plain.post(dripping_server + "/x", json={}).text == "ok"
    client.close()


def test_stop_ends_a_request_at_once(dripping_server):
    stop = threading.Event()
    client = DeadlineClient(total_s=60, stop=stop)
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="stopped"):
        client.post(dripping_server, json={})
    assert time.monotonic() - started < 2.0


def test_webhook_and_portal_clients_use_the_total_deadline(dripping_server):
    from consumers.backoff import Backoff

    hook = WebhookOutput(dripping_server, attempts=2, timeout_s=1.0, backoff=Backoff(base_s=0.01, max_s=0.01))
    started = time.monotonic()
    event = models.CaseAwaiting(event_id=str(uuid.uuid4()), occurred_at=dt.datetime(2025, 8, 1, tzinfo=dt.timezone.utc),
                                source={"system": "t", "instance": "t"}, case_id="c", cccd="079085123456",
                                province="79", missing=["EXAM_MISSING"])
    with pytest.raises(WebhookFailed, match="DeadlineExceeded"):
        hook.emit(render.view(event))
    assert time.monotonic() - started < 4.0
    outcome = PortalClient(dripping_server, timeout_s=1.0).deliver(issuance(1))
    assert (outcome.delivered, outcome.retryable) == (False, True) and "DeadlineExceeded" in outcome.error
