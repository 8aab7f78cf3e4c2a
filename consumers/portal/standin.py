"""A stand-in for the national portal's issuance API, on a loopback port, for tests and the demo.

Why a stand-in and not a mock: the sink's promises (exactly once at the portal, survives an outage, dead-letters
after N failures) are about HTTP over real sockets (refused connections, 503s, repeated keys), so the stand-in
speaks real HTTP and can misbehave on command:

- `refuse_next(k)` / `refuse_for(seconds)`: answer 503 (with Retry-After) to the next k requests / for a while;
- `go_down()` / `come_up()` / `down_for(seconds)`: close the port entirely (connection refused), then reopen it.

It authenticates like the real portal must (`consumers.portal.signing`): a POST /issuances without a valid bearer
key id, a timestamp within 5 minutes and the HMAC of its exact body is refused with 401 and a one-line reason,
counted in `unauthorized` (never in `received`). Its keys are given (`keys={key id: secret}`) or, if not, one is
generated and offered as `portal.credentials` for the sink of the same test or demo.

With `tls=(cert_file, key_file)` it speaks HTTPS (`write_tls_files` makes a throw-away CA and a certificate for
127.0.0.1/localhost signed by it; the sink then verifies the portal against that CA: `--portal-ca`).

It records each issuance once per `Idempotency-Key`, like the real portal is required to: a repeated POST gets
200 and the same body as the first (201), and counts in `received` but not in `distinct`.

HTTP API: POST /issuances (signed; header Idempotency-Key, JSON body with the same issuance_id);
GET /issuances (counts); GET /health; POST /_control (not authenticated: a test tool) with {"refuse_next": k} |
{"refuse_for_s": s} | {"down_for_s": s} | {"reset": true} (for a stand-in running in another process:
`gplx-bus portal standin --port P`).
"""
from __future__ import annotations

import json
import logging
import os
import ssl
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Mapping

from consumers.portal.signing import PortalCredentials, verify

log = logging.getLogger(__name__)

_RECEIPTS = uuid.UUID("0d6c1f8e-3b51-4a7f-9d0e-2c4b6a8e1f35")  # receipt ids derive from the key: stable replies


class StandinPortal:
    """The stand-in portal; `with StandinPortal() as portal: ... portal.url ...` (port 0 picks a free port)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, keys: Mapping[str, bytes] | None = None,
                 credentials: PortalCredentials | None = None,
                 tls: tuple[str | Path, str | Path] | None = None) -> None:
        self.host, self.port = host, port
        self._tls_context: ssl.SSLContext | None = None
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            self._tls_context = context
        if keys is None:
            self.credentials = credentials or PortalCredentials.generate()
            keys = {self.credentials.key_id: self.credentials.secret}
        else:
            self.credentials = credentials
        self._keys = dict(keys)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timers: list[threading.Timer] = []
        self.reset()

    # ---- lifecycle ----

    @property
    def url(self) -> str:
        return f"{'https' if self._tls_context else 'http'}://{self.host}:{self.port}"

    def start(self) -> "StandinPortal":
        self.come_up()
        return self

    def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self.go_down()

    def __enter__(self) -> "StandinPortal":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def come_up(self) -> None:
        """Listen (again) on the same port."""
        with self._lock:
            if self._server is not None:
                return
            if self._tls_context is None:
                server = ThreadingHTTPServer((self.host, self.port), _handler_for(self))
            else:
                server = _TLSServer((self.host, self.port), _handler_for(self))
                server.ssl_context = self._tls_context
            server.daemon_threads = True
            self.port = server.server_address[1]  # the real port when 0 was asked for
            self._server = server
            self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                            name=f"standin-portal-{self.port}", daemon=True)
            self._thread.start()
        log.info("stand-in portal listening on %s", self.url)

    def go_down(self) -> None:
        """Close the port: clients get 'connection refused' until come_up()."""
        with self._lock:
            server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        log.info("stand-in portal on port %d is down", self.port)

    @property
    def is_up(self) -> bool:
        return self._server is not None

    def down_for(self, seconds: float) -> None:
        """Go down now and come back up after `seconds` (a timer, so callers need not sleep)."""
        self.go_down()
        timer = threading.Timer(seconds, self.come_up)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    # ---- misbehaviour ----

    def refuse_next(self, k: int) -> None:
        """Answer 503 to the next k issuance requests."""
        with self._lock:
            self._refuse_left = k

    def refuse_for(self, seconds: float) -> None:
        """Answer 503 to every issuance request for `seconds` from now (0 ends a window at once)."""
        with self._lock:
            self._refuse_until = time.monotonic() + seconds

    def reset(self) -> None:
        """Forget everything received and every refusal."""
        with self._lock:
            self._replies: dict[str, dict[str, Any]] = {}
            self._bodies: dict[str, dict[str, Any]] = {}
            self._received = self._refused = self._unauthorized = 0
            self._unauthorized_reasons: dict[str, int] = {}
            self._refuse_left = 0
            self._refuse_until = 0.0

    # ---- what it saw ----

    @property
    def received(self) -> int:
        """Accepted POSTs, repeats included."""
        return self._received

    @property
    def distinct(self) -> int:
        """Distinct Idempotency-Keys accepted: issuances the portal would actually act on."""
        return len(self._replies)

    @property
    def refused(self) -> int:
        """Issuance requests answered 503 (the portal's temporary trouble, see refuse_next/refuse_for)."""
        return self._refused

    @property
    def unauthorized(self) -> int:
        """Issuance requests refused with 401 (unsigned, altered, unknown or wrong key, stale): never issued."""
        return self._unauthorized

    def unauthorized_reasons(self) -> dict[str, int]:
        """Reason -> how many 401s gave it."""
        with self._lock:
            return dict(self._unauthorized_reasons)

    def issuances(self) -> dict[str, dict[str, Any]]:
        """Idempotency-Key -> the body first received under it."""
        with self._lock:
            return dict(self._bodies)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"received": self._received, "distinct": len(self._replies), "refused": self._refused,
                    "unauthorized": self._unauthorized, "up": self._server is not None}

    # ---- request handling (called by the handler threads) ----

    def _authenticate(self, headers, body: bytes) -> str | None:
        """None if the request is signed by a known key, else why not (counted)."""
        reason = verify(headers, body, self._keys)
        if reason is not None:
            with self._lock:
                self._unauthorized += 1
                self._unauthorized_reasons[reason] = self._unauthorized_reasons.get(reason, 0) + 1
            log.warning("stand-in portal refused an issuance request: %s", reason)
        return reason

    def _should_refuse(self) -> bool:
        with self._lock:
            if self._refuse_left > 0:
                self._refuse_left -= 1
            elif time.monotonic() >= self._refuse_until:
                return False
            self._refused += 1
            return True

    def _accept(self, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self._received += 1
            if key in self._replies:
                return 200, self._replies[key]
            reply = {"issuance_id": key, "status": "ACCEPTED",
                     "receipt_id": str(uuid.uuid5(_RECEIPTS, key)), "accepted_at": _now_iso()}
            self._replies[key], self._bodies[key] = reply, body
        log.info("stand-in portal accepted issuance %s", key)
        return 201, reply

    def _control(self, command: dict[str, Any]) -> dict[str, Any]:
        if "refuse_next" in command:
            self.refuse_next(int(command["refuse_next"]))
        if "refuse_for_s" in command:
            self.refuse_for(float(command["refuse_for_s"]))
        if command.get("reset"):
            self.reset()
        if "down_for_s" in command:
            # From another thread: shutdown() must not run on the thread serving this very request.
            threading.Thread(target=self.down_for, args=(float(command["down_for_s"]),), daemon=True).start()
        return self.stats()


class _TLSServer(ThreadingHTTPServer):
    """HTTPS: the TLS handshake runs on the request's own thread (a slow or plain-HTTP client never holds up the
    accept loop); a failed handshake is one DEBUG line, not a traceback on stderr."""

    daemon_threads = True
    ssl_context: ssl.SSLContext

    def get_request(self):
        sock, address = self.socket.accept()
        return self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def finish_request(self, request, client_address) -> None:
        request.settimeout(10)
        request.do_handshake()
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address) -> None:
        log.debug("stand-in portal: request from %s failed: %s", client_address[0], sys.exc_info()[1])


def write_tls_files(folder: str | Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
                    name: str = "portal") -> dict[str, Path]:
    """A throw-away CA and a server certificate for `hosts` signed by it, as PEM files in `folder` (keys 0600):
    {"ca": ca.pem, "cert": <name>.pem, "key": <name>.key}. Give "cert"/"key" to the stand-in (or the clinic
    gateway, name="gateway"), "ca" to its client."""
    from deploy.local import tls

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ca = tls.generate_ca(f"gplx-bus {name} CA")
    server = tls.issue_server_cert(ca, hosts=tuple(dict.fromkeys(hosts)), common_name=f"gplx-{name}")
    paths = {"ca": folder / "ca.pem", "cert": folder / f"{name}.pem", "key": folder / f"{name}.key"}
    paths["ca"].write_bytes(ca.cert_pem)
    paths["cert"].write_bytes(server.cert_pem + ca.cert_pem)
    fd = os.open(paths["key"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(server.key_pem)
    return paths


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _handler_for(portal: StandinPortal) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0: one request per connection, so "down" really refuses (no kept-alive connection survives).
        protocol_version = "HTTP/1.0"

        def log_message(self, fmt: str, *args: Any) -> None:  # access log at DEBUG, not on stderr
            log.debug("stand-in portal: " + fmt, *args)

        def _reply(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _raw_body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length)

        def do_GET(self) -> None:  # noqa: N802 - http.server naming
            if self.path == "/health":
                self._reply(200, {"status": "UP"})
            elif self.path == "/issuances":
                self._reply(200, portal.stats())
            else:
                self._reply(404, {"error": "not found"})

        def do_POST(self) -> None:  # noqa: N802
            raw = self._raw_body()
            if self.path not in ("/_control", "/issuances"):
                self._reply(404, {"error": "not found"})
                return
            # Authentication first, over the bytes as received (before any parsing), and before the overload
            # check: an unsigned request never takes a refusal slot nor learns anything but its reason.
            if self.path == "/issuances" and (reason := portal._authenticate(self.headers, raw)) is not None:
                self._reply(401, {"error": reason}, {"WWW-Authenticate": 'Bearer realm="gplx-portal"'})
                return
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                self._reply(400, {"error": "body is not JSON"})
                return
            if self.path == "/_control":
                self._reply(200, portal._control(body if isinstance(body, dict) else {}))
                return
            if portal._should_refuse():
                self._reply(503, {"error": "portal temporarily unavailable"}, {"Retry-After": "1"})
                return
            key = self.headers.get("Idempotency-Key")
            if not key:
                self._reply(400, {"error": "Idempotency-Key header is required"})
                return
            if not isinstance(body, dict) or body.get("issuance_id") != key:
                self._reply(422, {"error": "body must be an issuance whose issuance_id equals the Idempotency-Key"})
                return
            status, reply = portal._accept(key, body)
            self._reply(status, reply)

    return Handler
