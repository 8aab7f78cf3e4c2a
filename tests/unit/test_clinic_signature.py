"""Signed health certificates: the canonical form, the validity rules of the key book, the gateway's OpenAPI
document as checked in (schemas/openapi/clinic-gateway.json)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from schemas import models, signature
from schemas.signature import KeyBook, SignatureError

T0 = datetime(2026, 3, 1, 1, 0, tzinfo=timezone.utc)


def certificate(**changes) -> models.HealthCertificate:
    fields = dict(event_id="123e4567-e89b-12d3-a456-426614174000", occurred_at=T0,
                  source={"system": "clinic", "instance": "79001"}, certificate_number="00042/GKSKLX/79001/26",
                  version_kind="ADD", cccd="079190123456", clinic_code="79001", health_group=2, requested_class="B",
                  conclusions=[{"licence_class": "B", "fit": True}, {"licence_class": "A1", "fit": False}],
                  signed_at=T0, doctor="Nguyễn Văn An", signature=b"")
    return models.HealthCertificate(**{**fields, **changes})


def public_der(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_event(key, at=T0, revoked_at=None, clinic="79001") -> models.ClinicKey:
    der = public_der(key)
    return models.ClinicKey(event_id="123e4567-e89b-12d3-a456-426614174001", occurred_at=at,
                            source={"system": "operator", "instance": "t"}, clinic_code=clinic,
                            key_id=signature.key_id(der), algorithm=signature.ALGORITHM, public_key=der,
                            registered_at=at, revoked_at=revoked_at)


def test_the_canonical_form_is_the_documented_lines():
    cert = certificate(signature_key_id="00112233aabbccdd")
    assert signature.canonical_form(cert) == (
        "gplx-health-certificate-v1\n00042/GKSKLX/79001/26\nADD\n079190123456\n79001\n2\nB\nB:1,A1:0\n"
        "1772326800000\nNguyễn Văn An\n00112233aabbccdd").encode()
    with pytest.raises(SignatureError, match="doctor contains a line break"):
        signature.canonical_form(certificate(doctor="A\nB"))


def test_a_signed_certificate_verifies_and_any_change_breaks_it():
    key = ec.generate_private_key(ec.SECP256R1())
    book = KeyBook()
    book.apply(key_event(key))
    cert = signature.signed(certificate(), key)
    assert book.refusal(cert, T0) is None
    assert "registered later" in book.refusal(cert, T0 - timedelta(seconds=1))  # on the bus before the key
    assert "does not verify" in book.refusal(cert.model_copy(update={"health_group": 3}), T0)
    assert "does not verify" in book.refusal(cert.model_copy(update={"signature": b"\x30\x00"}), T0)
    other = signature.signed(certificate(), ec.generate_private_key(ec.SECP256R1()))
    assert "unknown key id" in book.refusal(other, T0)
    # the key of another clinic does not sign for this one
    assert "unknown key id" in book.refusal(cert.model_copy(update={"clinic_code": "79002",
                                                                    "certificate_number": "00042/GKSKLX/79002/26"}), T0)


def test_a_revoked_key_keeps_what_it_signed_before_the_revocation():
    key = ec.generate_private_key(ec.SECP256R1())
    book = KeyBook()
    book.apply(key_event(key, revoked_at=T0 + timedelta(days=30)))
    before = signature.signed(certificate(signed_at=T0 + timedelta(days=29)), key)
    after = signature.signed(certificate(signed_at=T0 + timedelta(days=30)), key)
    assert book.refusal(before, T0 + timedelta(days=60)) is None
    assert "revoked" in book.refusal(after, T0 + timedelta(days=60))


def test_unsigned_certificates_pass_until_the_clinic_registers_a_key():
    book = KeyBook()
    book.apply(key_event(ec.generate_private_key(ec.SECP256R1()), at=T0))
    unsigned = certificate()
    assert book.refusal(unsigned, T0 - timedelta(seconds=1)) is None  # on the bus before the key: as before
    assert "unsigned" in book.refusal(unsigned, T0)
    assert book.refusal(certificate(clinic_code="79002", certificate_number="00042/GKSKLX/79002/26"), T0) is None


def test_only_p256_public_keys_are_taken():
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert signature.load_public_key(pem) == public_der(key)
    other = ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(SignatureError, match="P-256"):
        signature.load_public_key(other)
    with pytest.raises(SignatureError, match="not a PEM or DER"):
        signature.load_public_key(b"hello")


def test_the_checked_in_openapi_document_is_the_gateways():
    from producers.gateway.http import OPENAPI_FILE, openapi_document

    assert json.loads(OPENAPI_FILE.read_text(encoding="utf-8")) == json.loads(json.dumps(openapi_document())), (
        "schemas/openapi/clinic-gateway.json is stale: regenerate it (README, 'The clinic gateway')")
    body = openapi_document()["components"]["schemas"]["HealthCertificate"]
    assert set(body["properties"]) == set(models.HealthCertificate.model_fields)
