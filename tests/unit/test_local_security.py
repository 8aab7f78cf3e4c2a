"""The secured stack's CA/certificate generation and the client config files, without a broker."""
from __future__ import annotations

import ipaddress
import stat

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from deploy.local import tls
from deploy.local.errors import LauncherError
from deploy.local.security import (SecureFiles, client_properties, librdkafka_properties, user_name,
                                   write_private)
from topology.connection import Connection


@pytest.fixture(scope="module")
def ca():
    return tls.generate_ca()


@pytest.fixture(scope="module")
def server(ca):
    return tls.issue_server_cert(ca)


def test_server_certificate_names_loopback_in_its_san(server):
    cert = x509.load_pem_x509_certificate(server.cert_pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert ExtendedKeyUsageOID.SERVER_AUTH in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_server_certificate_is_signed_by_the_ca(ca, server):
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    cert = x509.load_pem_x509_certificate(server.cert_pem)
    cert.verify_directly_issued_by(ca_cert)  # raises if the signature or issuer does not match
    with pytest.raises((ValueError, InvalidSignature)):  # issuer name differs / signature does not verify
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate(tls.generate_ca("other").cert_pem))
    assert ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


@pytest.mark.parametrize("which", ["ca", "server"])
def test_keys_are_unencrypted_pkcs8(ca, server, which):
    pem = (ca if which == "ca" else server).key_pem
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")  # PKCS#8; PKCS#1 would say "RSA PRIVATE KEY"
    key = serialization.load_pem_private_key(pem, password=None)
    cert = x509.load_pem_x509_certificate((ca if which == "ca" else server).cert_pem)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()


def test_keystore_is_key_then_chain(ca, server):
    blocks = tls.keystore_pem(server, ca).split(b"-----END ")
    assert b"BEGIN PRIVATE KEY" in blocks[0] and b"BEGIN CERTIFICATE" in blocks[1] and b"BEGIN CERTIFICATE" in blocks[2]
    assert x509.load_pem_x509_certificates(tls.keystore_pem(server, ca))[1].subject == \
        x509.load_pem_x509_certificate(ca.cert_pem).subject


def test_client_properties_use_kafkas_own_keys(tmp_path):
    text = client_properties("province-01", "s3cret", tmp_path / "ca.pem", "127.0.0.1:9093")
    assert read_properties_text(text) == {
        "bootstrap.servers": "127.0.0.1:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.jaas.config": 'org.apache.kafka.common.security.scram.ScramLoginModule required '
                            'username="province-01" password="s3cret";',
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(tmp_path / "ca.pem"),
    }


def test_librdkafka_properties_use_librdkafkas_keys(tmp_path):
    props = read_properties_text(librdkafka_properties("sre", "pw", tmp_path / "ca.pem"))
    assert props == {"security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "sre",
                     "sasl.password": "pw", "ssl.ca.location": str(tmp_path / "ca.pem")}


def test_saved_password_files_are_private_and_read_back(tmp_path):
    files = SecureFiles(tmp_path / "secure")
    config = files.save_password("portal", "pw-1", "127.0.0.1:1")
    files.save_password("clinic", "pw-2")
    for path in (config, files.kcat_config("portal"), files.credentials):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.clients.stat().st_mode) == 0o700
    assert files.passwords() == {"portal": "pw-1", "clinic": "pw-2"}
    files.ca.write_bytes(tls.generate_ca().cert_pem)  # the login names the CA file
    conn = Connection.from_env({}, client_config=config)  # read as every command of ours reads a client config
    assert (conn.bootstrap, conn.security_protocol, conn.sasl_mechanism, conn.sasl_username, conn.sasl_password,
            conn.ssl_cafile) == ("127.0.0.1:1", "SASL_SSL", "SCRAM-SHA-512", "portal", "pw-1", str(files.ca))


def test_write_private_tightens_an_existing_file(tmp_path):
    path = tmp_path / "f"
    path.write_text("old")
    path.chmod(0o644)
    write_private(path, "new")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == "new"


def test_created_folder_holds_ca_keystore_and_admin_password(tmp_path):
    files = SecureFiles(tmp_path / "secure")
    password = files.create()
    assert files.password("admin") == password and len(password) >= 24
    assert stat.S_IMODE(files.keystore.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.ca_key.stat().st_mode) == 0o600
    lines = files.server_properties(9093, 9094)
    assert "listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL" in lines
    assert "allow.everyone.if.no.acl.found=false" in lines
    assert files.format_args() == ["--add-scram", f"SCRAM-SHA-512=[name=admin,password={password}]"]


@pytest.mark.parametrize("principal, user", [("User:province-01", "province-01"), ("portal", "portal")])
def test_user_names(principal, user):
    assert user_name(principal) == user


@pytest.mark.parametrize("bad", ["Group:x", "User:", 'User:a"b', "User:a=b"])
def test_unusable_user_names_are_refused_in_one_line(bad):
    with pytest.raises(LauncherError, match="User:"):
        user_name(bad)


def read_properties_text(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)
