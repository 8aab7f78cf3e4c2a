"""Why a Kafka connection failed, in one sentence: the one message every command gives for "cannot reach Kafka".

kafka-python reports a closed port, a plaintext client at a TLS port, a CA that did not sign the broker's
certificate, a missing login and a wrong password all the same way: no broker answered before the bootstrap
timeout (KafkaTimeoutError "Unable to bootstrap"). So when connecting failed, `cannot_reach` probes the first
address step by step, each step bounded by a short deadline, and names the first step that fails:

1. TCP connect;
2. TLS handshake with the configured CA (SSL / SASL_SSL); for a PLAINTEXT client, whether the port speaks TLS;
3. a Kafka request: for a SASL client the SASL handshake and login (SCRAM or PLAIN), otherwise a Metadata
   request (a SASL listener hangs up on it: the login is missing).

The probe sends only what a client sends when it connects (the SCRAM exchange never reveals the password).
`refuse_unreachable` runs it before a command's first Kafka client, so a known cause is one line at once rather
than after the client's 10 s bootstrap timeout; it costs one connection and login (~0.1-0.3 s on loopback).
"""
from __future__ import annotations

import socket
import ssl
import struct
import time

from kafka.errors import KafkaConnectionError, KafkaTimeoutError, SaslAuthenticationFailedError

from topology.connection import CLIENT_CONFIG_ENV, Connection, SettingsError

#: What kafka-python raises when it gave up connecting (the cause is then found by `cannot_reach`).
CONNECT_ERRORS = (KafkaConnectionError, KafkaTimeoutError, SaslAuthenticationFailedError)
DEADLINE_S = 5.0
_CLIENT_ID = b"gplx-bus-diagnose"
_CONFIG = f"--client-config / {CLIENT_CONFIG_ENV}"


def cannot_reach(conn: Connection | str, deadline_s: float = DEADLINE_S) -> str:
    """The sentence for a failed connection: `cannot reach Kafka at <servers>: <cause>; <fix>`."""
    conn = Connection.of(conn)
    try:
        _probe(conn, time.monotonic() + deadline_s)
    except _Cause as cause:
        return f"cannot reach Kafka at {conn}: {cause}"
    return (f"cannot reach Kafka at {conn}: the broker accepts this client's connection and login now: it was "
            "down or slow a moment ago, or it advertises an address this machine cannot reach (advertised.listeners)")


def refuse_unreachable(conn: Connection | str, error: type[Exception], deadline_s: float = DEADLINE_S) -> None:
    """Raise `error(<the cannot_reach sentence>)` if the probe finds a cause; otherwise (the probe passed, or ran
    out of time on a slow machine) return, and let the client connect and time out on its own."""
    conn = Connection.of(conn)
    try:
        _probe(conn, time.monotonic() + deadline_s)
    except _Slow:
        return
    except _Cause as cause:
        raise error(f"cannot reach Kafka at {conn}: {cause}") from None


def _probe(conn: Connection, until: float) -> None:
    """Each step of the module docstring in turn; _Cause names the first that fails."""
    sock, host, port = _tcp(conn.bootstrap, until)
    where = f"{host}:{port}"
    try:
        with sock:
            if conn.uses_ssl:
                try:
                    context = conn.ssl_context()
                except SettingsError as exc:
                    raise _Cause(str(exc)) from None
                sock = _tls(sock, context, host, where, conn, until)
            if conn.uses_sasl:
                _login(sock, conn, where, until)
            else:
                _metadata(sock, conn, where, until)
    except (OSError, ValueError, struct.error) as exc:
        raise _Cause(f"the broker at {where} broke off the probe ({type(exc).__name__}); check its log") from None


class _Cause(Exception):
    """One step failed; the message is the sentence."""


class _Slow(_Cause):
    """The probe ran out of time: no cause found (the machine may just be busy)."""


def _remaining(until: float) -> float:
    left = until - time.monotonic()
    if left <= 0:
        raise _Slow("no answer within the probe's deadline: the broker or the network is too slow or blocked")
    return left


def _tcp(bootstrap: str, until: float) -> tuple[socket.socket, str, int]:
    refused = []
    for address in bootstrap.split(","):
        host, _, port = address.strip().rpartition(":")
        host = host.strip("[]")
        try:
            return socket.create_connection((host, int(port)), timeout=_remaining(until)), host, int(port)
        except _Slow:
            raise
        except (OSError, ValueError) as exc:
            refused.append(f"{address.strip()} ({_why(exc)})")
    raise _Cause(f"nothing answers at {'; '.join(refused)}: start the broker (`gplx-bus local up`) or point "
                 "--bootstrap-servers / KAFKA_BOOTSTRAP_SERVERS at yours")


def _slow_if_timeout(exc: BaseException) -> None:
    if isinstance(exc, (socket.timeout, TimeoutError)):
        raise _Slow(f"no answer within the probe's deadline ({type(exc).__name__}): the broker or the network is "
                    "too slow or blocked") from None


def _why(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "no answer"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    return type(exc).__name__


def _tls(sock: socket.socket, context: ssl.SSLContext, host: str, where: str, conn: Connection,
         until: float) -> ssl.SSLSocket:
    sock.settimeout(_remaining(until))
    try:
        return context.wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        ca = conn.ssl_cafile or "the system's CA certificates"
        if "hostname" in (exc.verify_message or "").lower() or "IP address mismatch" in str(exc):
            raise _Cause(f"the broker's TLS certificate at {where} is not for the name {host} "
                         f"({exc.verify_message}): connect by a name the certificate lists") from None
        raise _Cause(f"the broker's TLS certificate at {where} is not signed by a CA in {ca} "
                     f"({exc.verify_message}): set ssl.truststore.location in {conn.client_config or _CONFIG} "
                     "to this cluster's CA") from None
    except ssl.SSLError as exc:
        raise _Cause(f"the TLS handshake with {where} failed ({exc.reason or type(exc).__name__}): does that port "
                     "speak TLS? Check security.protocol against the broker's listener") from None
    except (OSError, socket.timeout) as exc:
        _slow_if_timeout(exc)
        raise _Cause(f"the TLS handshake with {where} failed ({_why(exc)}): does that port speak TLS? Check "
                     "security.protocol against the broker's listener") from None


def _login(sock: socket.socket, conn: Connection, where: str, until: float) -> None:
    mechanism = conn.sasl_mechanism or "PLAIN"
    reply = _ask(sock, 17, 1, _string(mechanism.encode()), where, until, "SASL handshake")  # SaslHandshake v1
    error, count = struct.unpack_from(">hi", reply)
    offered = _strings(reply, 6, count)
    if error or mechanism not in offered:
        raise _Cause(f"the broker at {where} does not offer SASL {mechanism} (it offers "
                     f"{', '.join(offered) or 'none'}): set sasl.mechanism in {conn.client_config or _CONFIG}")
    user = conn.sasl_username or ""
    if mechanism == "PLAIN":
        tokens = iter([b"\0" + user.encode() + b"\0" + (conn.sasl_password or "").encode()])
        scram = None
    else:
        from kafka.net.sasl.scram import ScramClient  # kafka-python's SCRAM messages

        scram = ScramClient(user, conn.sasl_password or "", mechanism)
        tokens = iter([scram.first_message(), None])
    for step, token in enumerate(tokens):
        if token is None:
            token = scram.final_message()
        reply = _ask(sock, 36, 0, struct.pack(">i", len(token)) + token, where, until, "SASL login")
        error, message, data = _authenticate_reply(reply)
        if error:
            raise _Cause(f"the broker at {where} refused the {mechanism} login of user {user!r} (wrong password, "
                         f"or no such user): check the password in {conn.client_config or _CONFIG}, or set a new one "
                         f"with `gplx-bus users rotate User:{user}`")
        if scram is not None and step == 0:
            scram.process_server_first_message(data)


def _metadata(sock: socket.socket, conn: Connection, where: str, until: float) -> None:
    try:
        _ask(sock, 3, 0, struct.pack(">i", 0), where, until, "Metadata request")  # Metadata v0, all topics
    except _Cause:
        if not conn.uses_ssl and _speaks_tls(where, until):
            raise _Cause(f"the broker at {where} speaks TLS and this client PLAINTEXT (no client config given?): "
                         f"pass your principal's client properties ({_CONFIG}: security.protocol=SASL_SSL, "
                         "the CA and the login)") from None
        raise _Cause(f"the broker at {where} hung up on a request without a login: it wants SASL; add "
                     f"security.protocol=SASL_SSL, sasl.mechanism and sasl.jaas.config (user and password) to "
                     f"{conn.client_config or 'a client config file passed with ' + _CONFIG}") from None


def _speaks_tls(where: str, until: float) -> bool:
    host, _, port = where.rpartition(":")
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # only: is there a TLS server at all?
    try:
        with socket.create_connection((host, int(port)), timeout=_remaining(until)) as raw:
            with context.wrap_socket(raw, server_hostname=host):
                return True
    except (OSError, ssl.SSLError, _Cause):
        return False


# ---- Kafka's wire format: just the requests above -------------------------------------------------------------

def _ask(sock: socket.socket, api_key: int, version: int, body: bytes, where: str, until: float,
         what: str) -> bytes:
    """Send one request (header v1, correlation id 1) and return the response body."""
    header = struct.pack(">hhih", api_key, version, 1, len(_CLIENT_ID)) + _CLIENT_ID
    request = header + body
    try:
        sock.settimeout(_remaining(until))
        sock.sendall(struct.pack(">i", len(request)) + request)
        size = struct.unpack(">i", _read(sock, 4))[0]
        return _read(sock, size)[4:]  # after the correlation id
    except (OSError, socket.timeout, EOFError) as exc:
        _slow_if_timeout(exc)
        raise _Cause(f"the broker at {where} hung up on the {what} ({_why(exc)})") from None


def _read(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("connection closed")
        data += chunk
    return data


def _string(data: bytes) -> bytes:
    return struct.pack(">h", len(data)) + data


def _strings(buf: bytes, offset: int, count: int) -> list[str]:
    out = []
    for _ in range(max(count, 0)):
        (n,) = struct.unpack_from(">h", buf, offset)
        out.append(buf[offset + 2:offset + 2 + n].decode())
        offset += 2 + n
    return out


def _authenticate_reply(buf: bytes) -> tuple[int, str, bytes]:
    """SaslAuthenticate v0 response: error code, error message, auth bytes."""
    error, n = struct.unpack_from(">hh", buf)
    offset = 4 + max(n, 0)
    message = buf[4:offset].decode(errors="replace") if n > 0 else ""
    (size,) = struct.unpack_from(">i", buf, offset)
    return error, message, buf[offset + 4:offset + 4 + max(size, 0)]
