"""A throw-away certificate authority for the secured local stack, and the broker's certificate it signs.

PEM throughout, private keys in unencrypted PKCS#8 ("BEGIN PRIVATE KEY"): Kafka reads that directly with
`ssl.keystore.type=PEM` / `ssl.truststore.type=PEM`, so no keytool step and no JKS passwords. The key files are
0600 in the run's folder and die with it. The broker certificate names 127.0.0.1 and localhost in its
subjectAltName, because clients (and the broker itself, inter-broker) verify the host name against the SAN only.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: Where the local stack listens; the broker certificate is valid for exactly these names.
LOCAL_HOSTS = ("127.0.0.1", "localhost")
_VALID_DAYS = 30  # a local run, not a deployment: short-lived on purpose


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, both PEM."""

    cert_pem: bytes
    key_pem: bytes  # PKCS#8, unencrypted


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pkcs8(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _validity() -> tuple[dt.datetime, dt.datetime]:
    now = dt.datetime.now(dt.timezone.utc)
    return now - dt.timedelta(minutes=5), now + dt.timedelta(days=_VALID_DAYS)  # 5 min: clock skew


def generate_ca(common_name: str = "gplx-bus local CA") -> KeyPair:
    """A self-signed CA that may sign end-entity certificates only (path length 0)."""
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    not_before, not_after = _validity()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _pkcs8(key))


def issue_server_cert(ca: KeyPair, hosts: tuple[str, ...] = LOCAL_HOSTS, common_name: str = "gplx-broker") -> KeyPair:
    """A TLS server (and client, for inter-broker) certificate for `hosts`, signed by `ca`."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    key = _new_key()
    alt_names = []
    for host in hosts:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    not_before, not_after = _validity()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _pkcs8(key))


def keystore_pem(server: KeyPair, ca: KeyPair) -> bytes:
    """What `ssl.keystore.type=PEM` reads from one file: the private key, then the certificate chain."""
    return server.key_pem + server.cert_pem + ca.cert_pem
