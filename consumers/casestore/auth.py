"""Who may ask the status API what: bearer API keys per principal, stored hashed, and signed citizen tokens.

Principals: `helpdesk` (any case, by application id or province), `province-NN` (its own province only),
`portal` (the National Public Service Portal acting for a logged-in citizen). A key is
`gplx.<key id>.<secret>`: the key id finds the entry, the secret (256 random bits) is compared by its SHA-256 in
constant time. A fast hash is enough: the secret is random and long, so there is nothing to guess from a stolen
file; a password hash (bcrypt) would only cost every request milliseconds. The keys file (0600) never holds a key.

A query by CCCD needs the citizen's authorization on top of the caller's key: header `X-Citizen-Token:
<expiry unix seconds>.<hex HMAC-SHA256(citizen secret, "<cccd>.<expiry>")>`, issued by the portal after the
citizen logged in (VNeID) and valid at most one hour. The citizen secret is in the keys file too (0600) and is
shared with the portal only; `gplx-bus status keys citizen-token` signs one for tests and the helpdesk's own tool.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from consumers.errors import KeysError  # noqa: F401 - raised here, imported from here by callers
from schemas.privacy import write_private

PRINCIPAL = re.compile(r"^(helpdesk|portal|province-\d{2})$")
TOKEN_MAX_SECONDS = 3600


@dataclass(frozen=True)
class Caller:
    principal: str
    key_id: str

    @property
    def province(self) -> str | None:
        """The province a province key is limited to, else None."""
        return self.principal.split("-", 1)[1] if self.principal.startswith("province-") else None


class Keys:
    """The keys file, read once at start."""

    def __init__(self, entries: dict[str, dict], citizen_secret: str) -> None:
        self._entries, self._citizen_secret = entries, citizen_secret.encode()

    @classmethod
    def load(cls, path: str | Path) -> "Keys":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(data["keys"], data["citizen_secret"])
        except FileNotFoundError:
            raise KeysError(f"no keys file at {path}: create one with `gplx-bus status keys add helpdesk "
                            f"--keys-file {path}`") from None
        except (ValueError, KeyError, TypeError):
            raise KeysError(f"{path} is not a keys file written by `gplx-bus status keys add`") from None

    def authenticate(self, authorization: str | None) -> Caller | None:
        """The caller of an `Authorization: Bearer gplx.<id>.<secret>` header, or None."""
        scheme, _, token = (authorization or "").partition(" ")
        parts = token.strip().split(".")
        if scheme.lower() != "bearer" or len(parts) != 3 or parts[0] != "gplx":
            return None
        entry = self._entries.get(parts[1])
        digest = hashlib.sha256(parts[2].encode()).hexdigest()
        if entry is None or not hmac.compare_digest(digest, entry["sha256"]):
            return None
        return Caller(entry["principal"], parts[1])

    def citizen_token(self, cccd: str, ttl_s: int = 600, now: float | None = None) -> str:
        expiry = int((time.time() if now is None else now) + ttl_s)
        return f"{expiry}.{self._sign(cccd, expiry)}"

    def citizen_allows(self, cccd: str, token: str | None, now: float | None = None) -> bool:
        expiry, _, signature = (token or "").partition(".")
        if not expiry.isdigit():
            return False
        now = time.time() if now is None else now
        if not now <= int(expiry) <= now + TOKEN_MAX_SECONDS:
            return False
        return hmac.compare_digest(signature, self._sign(cccd, int(expiry)))

    def _sign(self, cccd: str, expiry: int) -> str:
        return hmac.new(self._citizen_secret, f"{cccd}.{expiry}".encode(), hashlib.sha256).hexdigest()


def add_key(path: str | Path, principal: str) -> str:
    """A new key for `principal` in the keys file (created 0600 with a new citizen secret if absent); returns the
    key, which is shown once and kept nowhere."""
    if not PRINCIPAL.match(principal):
        raise KeysError(f"{principal!r} is not a principal of the status API: helpdesk, portal or province-NN "
                        "(two digits, e.g. province-01)")
    path = Path(path)
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {
        "citizen_secret": secrets.token_hex(32), "keys": {}}
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    data["keys"][key_id] = {"principal": principal, "sha256": hashlib.sha256(secret.encode()).hexdigest(),
                            "created_at": int(time.time())}
    write_private(path, json.dumps(data, indent=2) + "\n")
    return f"gplx.{key_id}.{secret}"
