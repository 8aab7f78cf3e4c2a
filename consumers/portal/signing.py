"""Authentication of the sink's requests to the portal: a bearer key id plus an HMAC-SHA256 of timestamp and body.

The scheme (README "Authentication at the portal" is the portal team's copy):

    Authorization:     Bearer <key id>
    X-GPLX-Timestamp:  <unix seconds, decimal integer, UTC>
    X-GPLX-Signature:  hex(HMAC-SHA256(secret, "<timestamp>" + "." + <exact request body bytes>))   (lowercase)

The portal looks the secret up by the key id, recomputes the HMAC over the bytes it received (before any JSON
parsing), compares in constant time and refuses a timestamp more than `MAX_SKEW_S` away from its own clock, either
way. Every refusal is 401 with a one-line reason; the reasons are fixed phrases (no secret, no body content).

Why these pieces: the key id says who sends (one secret per sender, rotated by adding a second id); the HMAC over
the exact bytes means no byte of the issuance can be changed on the way; the timestamp bounds how long a captured
request can be replayed, and a replay inside the window is harmless because the body carries its issuance id, which
must equal the Idempotency-Key, and the portal issues once per key.

The secret lives in a file (`--portal-secret-file` / `GPLX_PORTAL_SECRET_FILE`), one line, never in the repository
and never logged: `PortalCredentials` does not show it in its repr.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from consumers.errors import SecretFileError  # noqa: F401 - defined there, imported here as before
from topology.errors import SettingsError

log = logging.getLogger(__name__)

AUTHORIZATION = "Authorization"
TIMESTAMP = "X-GPLX-Timestamp"
SIGNATURE = "X-GPLX-Signature"
MAX_SKEW_S = 300  # 5 minutes either way
MIN_SECRET_CHARS = 32
DEFAULT_KEY_ID = "gplx-portal-sink"


@dataclass(frozen=True)
class PortalCredentials:
    """Who the sender is (key id) and the secret it signs with. repr/str never show the secret."""

    key_id: str
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not self.key_id or any(c.isspace() for c in self.key_id):
            raise SettingsError("a portal key id must be non-empty and without spaces")
        if len(self.secret) < MIN_SECRET_CHARS:
            raise SettingsError(f"a portal secret must have at least {MIN_SECRET_CHARS} characters")

    @classmethod
    def generate(cls, key_id: str = DEFAULT_KEY_ID) -> "PortalCredentials":
        return cls(key_id, secrets.token_urlsafe(32).encode())


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """hex(HMAC-SHA256(secret, timestamp + "." + body)): the canonical string is the timestamp as sent, a dot,
    and the body bytes exactly as sent."""
    return hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def sign(credentials: PortalCredentials, body: bytes, *, now: float | None = None) -> dict[str, str]:
    """The three headers for one request with this body (sign each attempt anew: the timestamp must be fresh)."""
    timestamp = str(int(time.time() if now is None else now))
    return {AUTHORIZATION: f"Bearer {credentials.key_id}", TIMESTAMP: timestamp,
            SIGNATURE: signature(credentials.secret, timestamp, body)}


def verify(headers: Mapping[str, str], body: bytes, keys: Mapping[str, bytes], *, now: float | None = None,
           max_skew_s: int = MAX_SKEW_S) -> str | None:
    """None if the request is authentic, else the one-line reason it is not. `headers` is case-insensitive
    (http.server's message, httpx's Headers) or uses the canonical spelling above; `keys` maps key id -> secret."""
    auth = (headers.get(AUTHORIZATION) or "").strip()
    scheme, _, key_id = auth.partition(" ")
    if not auth:
        return "missing Authorization: Bearer <key id>"
    if scheme.lower() != "bearer" or not key_id.strip():
        return "Authorization is not 'Bearer <key id>'"
    secret = keys.get(key_id.strip())
    if secret is None:
        return "unknown key id"
    timestamp = (headers.get(TIMESTAMP) or "").strip()
    if not timestamp:
        return f"missing {TIMESTAMP}"
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return f"{TIMESTAMP} is not unix seconds"
    skew = int(timestamp) - int(time.time() if now is None else now)
    if abs(skew) > max_skew_s:
        return (f"{TIMESTAMP} is {abs(skew)}s {'ahead of' if skew > 0 else 'behind'} the portal's clock "
                f"(limit {max_skew_s}s)")
    given = (headers.get(SIGNATURE) or "").strip().lower()
    if not given:
        return f"missing {SIGNATURE}"
    if not hmac.compare_digest(given.encode("ascii", "replace"), signature(secret, timestamp, body).encode()):
        return "signature does not match the body and timestamp for this key id"
    return None


# ---- the secret file ----

def write_secret_file(path: str | Path, credentials: PortalCredentials | None = None) -> PortalCredentials:
    """Write a secret (a new random one unless given) to `path`, created 0600 (never readable by others, not even
    for a moment); an existing file is replaced. Returns the credentials (key id: the given one or the default)."""
    credentials = credentials or PortalCredentials.generate()
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # O_CREAT's mode only applies to a new file
        os.write(fd, credentials.secret + b"\n")
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return credentials


def read_secret_file(path: str | Path, key_id: str = DEFAULT_KEY_ID) -> PortalCredentials:
    """The credentials from a secret file (its first line is the secret) and a key id. Warns (once, naming the file,
    not the content) when the file is readable by group or others."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
        raw = path.read_bytes()
    except OSError as exc:
        raise SecretFileError(f"cannot read the portal secret file {path}: {exc.strerror or exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("portal secret file %s is accessible by group or others (mode %o); chmod 600 it",
                    path, stat.S_IMODE(mode))
    lines = raw.splitlines()
    secret = lines[0].strip() if lines else b""
    if len(secret) < MIN_SECRET_CHARS:
        raise SecretFileError(f"the portal secret file {path} holds no secret of at least {MIN_SECRET_CHARS} "
                              f"characters on its first line")
    return PortalCredentials(key_id, secret)
