"""Signed health certificates: the canonical form a clinic signs, its signature, and the book of clinic keys.

Why a canonical form of our own rather than signing the JSON or Avro bytes: a hospital system in Java or .NET must
produce exactly the bytes we verify, from the fields alone, without our serialisers. Lines of text are the
simplest thing every language gets right. The form (version 1), UTF-8, the lines joined by one LF (0x0A), no
trailing LF:

    gplx-health-certificate-v1
    <certificate_number>
    <version_kind>                      ADD | EDIT | REVOKE
    <cccd>
    <clinic_code>
    <health_group>                      decimal, e.g. 2
    <requested_class>
    <conclusions>                       licence_class ":" 1 (fit) or 0 (unfit), in the order sent, joined by ","
                                        (e.g. B:1,A1:0; an empty line when there are none)
    <signed_at>                         Unix time in milliseconds (UTC), decimal
    <doctor>                            exactly as sent (no Unicode normalisation: sign what you send)
    <signature_key_id>

No field may contain a line break (CR or LF): such a certificate is refused. The signature is ECDSA over the NIST
P-256 curve with SHA-256, DER-encoded (ASN.1 SEQUENCE of r and s: Java's `SHA256withECDSA`, .NET's
`SignData(data, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence)`, OpenSSL's default), carried in
the certificate's `signature` field (base64 in JSON). ECDSA P-256 rather than Ed25519: .NET and Java have it
built in, Ed25519 needs a third-party library on .NET.

A key id is the first 16 hex digits of SHA-256 over the public key's DER SubjectPublicKeyInfo: derived, so an
operator cannot give two keys one id.

Validity (`KeyBook.refusal`), the same in the gateway and in the case processor:
- a certificate naming a key must name a key registered for its own clinic before the certificate reached the bus
  (its Kafka record time), and verify under it; a key registered later does not make it valid afterwards, so a
  replay decides the same (publish it again: `gplx-bus dlq replay`);
- a revoked key keeps certificates it signed *before* its revocation time valid (`signed_at` < `revoked_at`):
  a clinic rotating keys does not invalidate a year of certificates. Revoke a stolen key with the time it was
  stolen (`gplx-bus clinic keys revoke --at`), which also covers back-dated forgeries;
- a certificate without `signature_key_id` is accepted only while its clinic has no key: once a clinic has a key
  registered, every certificate of it that reaches the bus later (by its Kafka record time) must be signed.
  Otherwise anyone holding the shared clinic Kafka credentials could publish for a clinic that signs. Clinics
  not yet on signatures keep publishing through the SDK as before. The record time, not the wall clock, so a
  replay decides the same.
"""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from schemas.errors import GplxError

FORM_HEADER = "gplx-health-certificate-v1"
ALGORITHM = "ECDSA_P256_SHA256"
_LINE_BREAKS = ("\n", "\r")


class SignatureError(GplxError):
    """A certificate that cannot be verified; the message says why, never the signed content."""


def canonical_form(cert) -> bytes:
    """The bytes a clinic signs for a HealthCertificate (or anything with its fields)."""
    conclusions = ",".join(f"{c.licence_class}:{1 if c.fit else 0}" for c in cert.conclusions)
    signed_ms = int(cert.signed_at.timestamp() * 1000)
    kind = getattr(cert.version_kind, "value", cert.version_kind)
    lines = [FORM_HEADER, cert.certificate_number, kind, cert.cccd, cert.clinic_code, str(cert.health_group),
             cert.requested_class, conclusions, str(signed_ms), cert.doctor, cert.signature_key_id or ""]
    names = ("certificate_number", "version_kind", "cccd", "clinic_code", "health_group", "requested_class",
             "conclusions", "signed_at", "doctor", "signature_key_id")
    for name, line in zip(names, lines[1:]):
        if any(b in line for b in _LINE_BREAKS):
            raise SignatureError(f"{name} contains a line break: it cannot be signed (canonical form v1)")
    return "\n".join(lines).encode("utf-8")


def content_hash(cert) -> str:
    """SHA-256 (hex) of the canonical form: what "the same certificate" means for idempotency (the signature,
    event id and occurred_at may differ between two sendings of the same content)."""
    return hashlib.sha256(canonical_form(cert)).hexdigest()


def key_id(public_key_der: bytes) -> str:
    return hashlib.sha256(public_key_der).hexdigest()[:16]


def load_public_key(data: bytes) -> bytes:
    """A P-256 public key (PEM or DER SubjectPublicKeyInfo) -> its DER; SignatureError otherwise."""
    try:
        key = (serialization.load_pem_public_key(data) if data.lstrip().startswith(b"-----")
               else serialization.load_der_public_key(data))
    except ValueError:
        raise SignatureError("not a PEM or DER public key (SubjectPublicKeyInfo)") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise SignatureError("the clinic key must be an ECDSA P-256 (prime256v1) public key")
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def sign(cert, private_key: ec.EllipticCurvePrivateKey) -> bytes:
    """The clinic's side (tests, samples): the DER signature over the canonical form."""
    return private_key.sign(canonical_form(cert), ec.ECDSA(hashes.SHA256()))


def signed(cert, private_key: ec.EllipticCurvePrivateKey):
    """A copy of a HealthCertificate model carrying the key id of `private_key` and its signature."""
    der = private_key.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    unsigned = cert.model_copy(update={"signature_key_id": key_id(der)})
    return unsigned.model_copy(update={"signature": sign(unsigned, private_key)})


def signature_b64(cert) -> str:
    return base64.b64encode(cert.signature).decode()


@dataclass(frozen=True)
class ClinicKeyState:
    clinic_code: str
    key_id: str
    public_key: bytes  # DER SubjectPublicKeyInfo
    registered_at: datetime
    revoked_at: datetime | None


class KeyBook:
    """Clinic public keys by (clinic code, key id), as the compacted `clinics.keys` topic holds them."""

    def __init__(self) -> None:
        self._keys: dict[tuple[str, str], ClinicKeyState] = {}
        self._first: dict[str, datetime] = {}  # clinic -> when its first key was registered

    def apply(self, event) -> None:
        """Take a ClinicKey event (the latest state of one key)."""
        state = ClinicKeyState(event.clinic_code, event.key_id, event.public_key, event.registered_at,
                               event.revoked_at)
        self._keys[(state.clinic_code, state.key_id)] = state
        first = self._first.get(state.clinic_code)
        if first is None or state.registered_at < first:
            self._first[state.clinic_code] = state.registered_at

    def get(self, clinic_code: str, kid: str) -> ClinicKeyState | None:
        return self._keys.get((clinic_code, kid))

    def all(self) -> list[ClinicKeyState]:
        return sorted(self._keys.values(), key=lambda k: (k.clinic_code, k.registered_at))

    def knows(self, cert) -> bool:
        return cert.signature_key_id is None or self.get(cert.clinic_code, cert.signature_key_id) is not None

    def refusal(self, cert, arrival: datetime) -> str | None:
        """Why `cert`, on the bus since `arrival`, is not validly signed; None if it is (see the module doc)."""
        if cert.signature_key_id is None:
            first = self._first.get(cert.clinic_code)
            if first is not None and arrival >= first:
                return (f"unsigned certificate (no signature_key_id) from clinic {cert.clinic_code}, which has "
                        f"signed its certificates since {first.isoformat()}")
            return None
        key = self.get(cert.clinic_code, cert.signature_key_id)
        if key is None or key.registered_at > arrival:
            return (f"unknown key id {cert.signature_key_id} for clinic {cert.clinic_code}"
                    + ("" if key is None else " when the certificate reached the bus (registered later)"))
        if key.revoked_at is not None and cert.signed_at >= key.revoked_at:
            return (f"key {key.key_id} of clinic {cert.clinic_code} was revoked at {key.revoked_at.isoformat()}, "
                    f"before the certificate was signed")
        try:
            public = serialization.load_der_public_key(key.public_key)
            public.verify(cert.signature, canonical_form(cert), ec.ECDSA(hashes.SHA256()))
        except SignatureError as exc:
            return str(exc)
        except (InvalidSignature, ValueError):
            return f"signature does not verify under key {key.key_id} of clinic {cert.clinic_code}"
        return None
