"""A client of the clinic gateway with the SDK publisher's `publish(event) -> DeliveryResult`, so
`gplx-bus clinic publish FILE --via URL` reuses the import (`producers.adapters.clinic.publish_rows`) unchanged.
And `Signing`: a publisher wrapper that signs each certificate with the clinic's private key first."""
from __future__ import annotations

import ssl
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from producers.errors import DeliveryError, InvalidEvent, PublishError
from producers.sdk import DeliveryResult
from schemas import signature
from schemas.signature import SignatureError


class GatewayClient:
    """POSTs certificates to a gateway; a refusal is a PublishError with the gateway's one-line reason."""

    def __init__(self, url: str, api_key: str, *, ca: str | Path | None = None, timeout_s: float = 30.0) -> None:
        from producers.gateway.service import CertificateBody

        self._body = CertificateBody
        self.url = url.rstrip("/")
        verify = ssl.create_default_context(cafile=str(ca)) if ca else True
        self._http = httpx.Client(base_url=self.url, timeout=timeout_s, verify=verify,
                                  headers={"Authorization": f"Bearer {api_key}"})

    def publish(self, event) -> DeliveryResult:
        body = self._body.model_validate(event.model_dump()).model_dump_json()
        try:
            reply = self._http.post("/v1/certificates", content=body,
                                    headers={"Content-Type": "application/json"})
        except httpx.HTTPError as exc:
            raise DeliveryError(f"gateway {self.url} unreachable: {type(exc).__name__}") from None
        data = _json(reply)
        if reply.status_code == 202:
            return DeliveryResult(f"via {self.url}", data["partition"], data["offset"], data["event_id"])
        reason = f"HTTP {reply.status_code} from the gateway: {data.get('message', reply.reason_phrase)}"
        raise (InvalidEvent if 400 <= reply.status_code < 500 else DeliveryError)(reason)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "GatewayClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _json(reply: httpx.Response) -> dict:
    try:
        data = reply.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def load_private_key(path: str | Path) -> ec.EllipticCurvePrivateKey:
    """The clinic's signing key: an unencrypted PEM (PKCS#8 or SEC1) ECDSA P-256 private key."""
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SignatureError(f"cannot read the signing key {path}: {type(exc).__name__}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise SignatureError(f"{path} is not an ECDSA P-256 (prime256v1) private key")
    return key


class Signing:
    """Wraps a publisher (SDK or GatewayClient): each certificate is signed with `private_key` before publishing."""

    def __init__(self, inner, private_key: ec.EllipticCurvePrivateKey) -> None:
        self._inner = inner
        self._key = private_key

    def publish(self, event) -> DeliveryResult:
        try:
            return self._inner.publish(signature.signed(event, self._key))
        except SignatureError as exc:
            raise PublishError(str(exc)) from None
