"""Clinic API keys of the gateway: one per clinic, `Authorization: Bearer <key>`.

Why API keys rather than mTLS client certificates: uvicorn does not hand the client certificate to the
application (no ASGI TLS extension), so the clinic code would have to come from a proxy header we could not verify
here; and hospital IT teams run a header more easily than client-certificate provisioning. The API key says *who
calls*; the clinic's signature on each certificate (schemas.signature) says *who vouches for its content*, so a
stolen API key alone cannot publish a certificate that verifies.

The store (a JSON file, 0600) holds only SHA-256 hashes of the keys: {"keys": {"<sha256 hex>": "<clinic code>"}}.
A key is `gk_` + 43 url-safe characters (256 random bits), written once to a 0600 file for the clinic, never
printed nor logged.
"""
from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

from schemas.errors import GplxError
from schemas.privacy import write_private


class CredentialsError(GplxError):
    """The API key store cannot be read or written."""


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeys:
    """API key -> clinic code, from the store file (read once at start)."""

    def __init__(self, clinics_by_digest: dict[str, str]) -> None:
        self._clinics = dict(clinics_by_digest)

    @classmethod
    def load(cls, store: Path) -> "ApiKeys":
        try:
            data = json.loads(Path(store).read_text(encoding="utf-8"))
            return cls(dict(data["keys"]))
        except FileNotFoundError:
            raise CredentialsError(f"no API key store at {store} (gplx-bus clinic api-key CODE --store "
                                   f"{store} --out FILE)") from None
        except (ValueError, KeyError, TypeError):
            raise CredentialsError(f"{store} is not an API key store ({{\"keys\": {{...}}}})") from None

    def clinic_of(self, key: str) -> str | None:
        return self._clinics.get(_digest(key))


def issue(store: Path, clinic_code: str, out: Path) -> Path:
    """A new API key for `clinic_code`: its hash added to `store`, the key itself written to `out` (both 0600)."""
    store = Path(store)
    keys = json.loads(store.read_text(encoding="utf-8"))["keys"] if store.exists() else {}
    key = "gk_" + secrets.token_urlsafe(32)
    keys[_digest(key)] = clinic_code
    write_private(store, json.dumps({"keys": keys}, indent=2) + "\n")
    return write_private(out, key + "\n")
