"""topology.connection: the Kafka client properties file, the environment read once, and the translators into
each client library's settings (checked by building the real clients' configurations, not by restating them)."""
from __future__ import annotations

import asyncio
import re
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from topology import connection
from topology.connection import Connection, SettingsError, parse_jaas, parse_properties

ROOT = Path(__file__).resolve().parents[2]
JAAS_SCRAM = ('org.apache.kafka.common.security.scram.ScramLoginModule required username="province-01" '
              'password="s3cr=t;\\"x\\"";')


@pytest.fixture(scope="module")
def pem(tmp_path_factory) -> dict[str, Path]:
    """A throw-away self-signed CA certificate, and a client PEM (certificate + key), made by openssl."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=gplx",
                    "-keyout", str(folder / "key.pem"), "-out", str(folder / "ca.pem")],
                   check=True, capture_output=True)
    client = folder / "client.pem"
    client.write_text((folder / "ca.pem").read_text() + (folder / "key.pem").read_text())
    return {"ca": folder / "ca.pem", "client": client}


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "client.properties"
    path.write_text(text)
    return str(path)


# ---- the properties parser ---------------------------------------------------------------------------------------

def test_properties_separators_comments_and_blank_lines():
    text = "# a comment\n! another\n\n  a=1\nb: 2\nc 3\nd =  spaced value \ne=\nf\n"
    assert parse_properties(text) == {"a": "1", "b": "2", "c": "3", "d": "spaced value ", "e": "", "f": ""}


def test_properties_continuations_and_escapes():
    text = ("sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \\\n"
            '    username="alice" \\\n'
            '    password="alice-secret";\n'
            "path=C:\\\\certs\\\\ca.pem\n"  # an escaped backslash at the end does not continue the line
            "key\\=with\\:seps = v\n"
            "unicode=\\u0110\\u1ed5i\\tGPLX\n"
            "# a comment line \\\n"
            "after=comment\n")
    props = parse_properties(text)
    assert props["sasl.jaas.config"] == ('org.apache.kafka.common.security.plain.PlainLoginModule required '
                                         'username="alice" password="alice-secret";')
    assert props["path"] == "C:\\certs\\ca.pem"
    assert props["key=with:seps"] == "v"
    assert props["unicode"] == "Đổi\tGPLX"
    assert props["after"] == "comment"  # a comment's trailing backslash does not swallow the next line


def test_jaas_options_quoted_and_escaped():
    module, options = parse_jaas(JAAS_SCRAM)
    assert module == "org.apache.kafka.common.security.scram.ScramLoginModule"
    assert options == {"username": "province-01", "password": 's3cr=t;"x"'}
    with pytest.raises(SettingsError, match="not a JAAS entry"):
        parse_jaas('username="a" password="b"')


# ---- files into Connection ---------------------------------------------------------------------------------------

def test_kafka_style_sasl_ssl_file(tmp_path, pem):
    # In a .properties file a backslash is itself escaped; and the entry continues on the next line.
    jaas = JAAS_SCRAM.replace("\\", "\\\\").replace(" username", " \\\n  username")
    path = write(tmp_path, f"""# as for kafka-topics.sh --command-config
bootstrap.servers=broker-1:9093,broker-2:9093
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config={jaas}
ssl.truststore.type=PEM
ssl.truststore.location={pem['ca']}
""")
    conn = Connection.from_env({}, client_config=path)
    assert (conn.bootstrap, conn.security_protocol, conn.sasl_mechanism) == \
        ("broker-1:9093,broker-2:9093", "SASL_SSL", "SCRAM-SHA-512")
    assert (conn.sasl_username, conn.sasl_password) == ("province-01", 's3cr=t;"x"')
    assert conn.ssl_cafile == str(pem["ca"]) and conn.ssl_check_hostname and conn.client_config == path
    assert "s3cr" not in repr(conn) and str(conn) == "broker-1:9093,broker-2:9093"


def test_kcat_style_file(tmp_path):
    path = write(tmp_path, "security.protocol=sasl_plaintext\nsasl.mechanisms=PLAIN\n"
                           "sasl.username=alice\nsasl.password=pw\n")
    conn = Connection.from_env({}, client_config=path)
    assert (conn.security_protocol, conn.sasl_mechanism, conn.sasl_username, conn.sasl_password) == \
        ("SASL_PLAINTEXT", "PLAIN", "alice", "pw")


@pytest.mark.parametrize("text, message", [
    ("security.protocol=SSL\nssl.truststore.password=changeit\n", "unsupported key 'ssl.truststore.password'"),
    ("security.protocol=SASL_SSL\nsasl.mechanism=GSSAPI\nsasl.username=a\nsasl.password=b\n",
     "sasl.mechanism='GSSAPI'"),
    ("security.protocol=TLS\n", "security.protocol='TLS'"),
    ("security.protocol=SSL\nssl.truststore.type=JKS\nssl.truststore.location=/x.jks\n", "only PEM"),
    ("security.protocol=SSL\nssl.truststore.location=/etc/ca.pem\n", "needs ssl.truststore.type=PEM"),
    ("security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location=/nowhere/ca.pem\n",
     "/nowhere/ca.pem does not exist"),
    ("sasl.mechanism=PLAIN\n", "uses no SASL"),
    ("security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-256\nsasl.jaas.config="
     'org.apache.kafka.common.security.plain.PlainLoginModule required username="a" password="b";\n',
     "does not go with sasl.mechanism=SCRAM-SHA-256"),
    ("security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\n", "SASL needs a user and a password"),
])
def test_refused_with_one_line_naming_the_key_and_the_file(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(SettingsError) as caught:
        Connection.from_env({}, client_config=path)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    if "does not exist" not in message:
        assert path in str(caught.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(SettingsError, match=re.escape(str(tmp_path / "nope.properties"))):
        Connection.from_env({"KAFKA_CLIENT_CONFIG": str(tmp_path / "nope.properties")})


# ---- the environment, read once ----------------------------------------------------------------------------------

class CountingEnv(dict):
    def __init__(self, *args):
        super().__init__(*args)
        self.reads: dict[str, int] = {}

    def get(self, key, default=None):
        self.reads[key] = self.reads.get(key, 0) + 1
        return super().get(key, default)


def test_from_env_reads_each_variable_once_and_only_the_mapping_given(monkeypatch, tmp_path):
    monkeypatch.setattr(connection, "environment", lambda: pytest.fail("read the process environment"))
    path = write(tmp_path, "security.protocol=SASL_PLAINTEXT\nsasl.username=u\nsasl.password=p\n")
    env = CountingEnv({"KAFKA_BOOTSTRAP_SERVERS": "k:9092", "KAFKA_CLIENT_CONFIG": path,
                       "SCHEMA_REGISTRY_URL": "https://reg/apis/ccompat/v7", "SCHEMA_REGISTRY_USER": "ops",
                       "SCHEMA_REGISTRY_PASSWORD": "pw", "GPLX_TOPIC_PREFIX": "t-"})
    conn = Connection.from_env(env)
    assert max(env.reads.values()) == 1
    env["KAFKA_BOOTSTRAP_SERVERS"] = "changed:1"  # frozen: later changes of the environment change nothing
    assert (conn.bootstrap, conn.registry_url, conn.registry_auth, conn.prefix) == \
        ("k:9092", "https://reg/apis/ccompat/v7", ("ops", "pw"), "t-")
    assert conn.uses_sasl and conn.sasl_username == "u"


def test_precedence_and_defaults(tmp_path):
    path = write(tmp_path, "bootstrap.servers=from-file:9092\n")
    assert Connection.from_env({}).bootstrap == connection.DEFAULT_BOOTSTRAP
    assert Connection.from_env({}).registry_url == connection.DEFAULT_REGISTRY_URL
    assert Connection.from_env({"KAFKA_CLIENT_CONFIG": path}).bootstrap == "from-file:9092"
    assert Connection.from_env({"KAFKA_CLIENT_CONFIG": path, "KAFKA_BOOTSTRAP_SERVERS": "env:1"}).bootstrap == "env:1"
    assert Connection.from_env({"KAFKA_BOOTSTRAP_SERVERS": "env:1"}, bootstrap="opt:2").bootstrap == "opt:2"
    assert Connection.from_env({"GPLX_TOPIC_PREFIX": "env-"}, prefix="").prefix == ""  # an option given wins


def test_registry_password_without_user_is_refused():
    with pytest.raises(SettingsError, match="SCHEMA_REGISTRY_USER"):
        Connection.from_env({"SCHEMA_REGISTRY_PASSWORD": "pw"})


def test_to_env_round_trips_and_overrides_everything_inherited(tmp_path):
    path = write(tmp_path, "security.protocol=SASL_PLAINTEXT\nsasl.username=u\nsasl.password=p\n")
    conn = Connection.from_env({"SCHEMA_REGISTRY_USER": "ops", "SCHEMA_REGISTRY_PASSWORD": "pw"},
                               bootstrap="k:1", client_config=path, prefix="t-")
    assert Connection.from_env(conn.to_env()) == conn
    plain = Connection(bootstrap="k:1").to_env()
    assert plain["KAFKA_CLIENT_CONFIG"] == "" and plain["SCHEMA_REGISTRY_USER"] == ""
    assert Connection.from_env({"KAFKA_CLIENT_CONFIG": path, **plain}) == Connection(bootstrap="k:1")


def test_only_the_connection_module_reads_the_environment():
    """`os.environ` / `os.getenv` appear in the code packages only in topology/connection.py."""
    readers = sorted(str(p.relative_to(ROOT)) for package in ("schemas", "topology", "producers", "consumers")
                     for p in (ROOT / package).rglob("*.py")
                     if re.search(r"os\.environ|os\.getenv|getenv\(", p.read_text(encoding="utf-8")))
    assert readers == ["topology/connection.py"]


# ---- translators -------------------------------------------------------------------------------------------------

def sasl_ssl(pem, **fields) -> Connection:
    return Connection(bootstrap="127.0.0.1:1", security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                      sasl_username="u", sasl_password="p", ssl_cafile=str(pem["ca"]), **fields)


def test_plaintext_translations_are_the_plain_clients():
    conn = Connection.of("127.0.0.1:9092")
    assert conn.kafka_python_kwargs() == {"bootstrap_servers": "127.0.0.1:9092", "security_protocol": "PLAINTEXT"}
    assert conn.aiokafka_kwargs() == conn.kafka_python_kwargs()
    assert conn.faust_broker_credentials() is None
    assert conn.confluent_config() == {"bootstrap.servers": "127.0.0.1:9092", "security.protocol": "plaintext"}
    assert conn.registry_auth is None and Connection.of(conn) is conn


def test_kafka_python_kwargs_are_settings_of_every_client(pem):
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

    kwargs = sasl_ssl(pem).kafka_python_kwargs()
    assert kwargs["sasl_plain_username"] == "u" and kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext) and kwargs["ssl_context"].check_hostname
    for client in (KafkaProducer, KafkaConsumer, KafkaAdminClient):
        assert set(kwargs) <= set(client.DEFAULT_CONFIG), client


def test_aiokafka_clients_accept_the_kwargs(pem):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    async def build():
        for client in (AIOKafkaProducer(**sasl_ssl(pem).aiokafka_kwargs()),
                       AIOKafkaConsumer(**sasl_ssl(pem).aiokafka_kwargs())):
            await client.stop()  # never started: only closes what the constructor made

    asyncio.run(build())


def test_faust_credentials_reach_aiokafka_as_ours(pem):
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    conn = sasl_ssl(pem)
    expected = {k: v for k, v in conn.aiokafka_kwargs().items() if k not in ("bootstrap_servers", "ssl_context")}
    faust_auth = credentials_to_aiokafka_auth(conn.faust_broker_credentials())
    assert {k: v for k, v in faust_auth.items() if k != "ssl_context"} == expected
    assert isinstance(faust_auth["ssl_context"], ssl.SSLContext)
    tls_only = Connection(security_protocol="SSL", ssl_cafile=str(pem["ca"]))
    assert credentials_to_aiokafka_auth(tls_only.faust_broker_credentials())["security_protocol"] == "SSL"


def test_confluent_config_is_accepted_by_librdkafka(pem):
    confluent_kafka = pytest.importorskip("confluent_kafka")
    conn = sasl_ssl(pem, ssl_certfile=str(pem["client"]), ssl_check_hostname=False)
    config = conn.confluent_config()
    assert config["ssl.ca.location"] == str(pem["ca"]) and config["ssl.endpoint.identification.algorithm"] == "none"
    producer = confluent_kafka.Producer({**config, "log_level": 0})  # checks every key, loads the PEM files
    assert producer.flush(0) == 0


def test_mutual_tls_and_hostname_check_off(tmp_path, pem):
    path = write(tmp_path, f"security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location={pem['ca']}\n"
                           f"ssl.keystore.type=PEM\nssl.keystore.location={pem['client']}\n"
                           "ssl.endpoint.identification.algorithm=\n")
    context = Connection.from_env({}, client_config=path).ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and not context.check_hostname


def test_a_bad_pem_is_one_line(tmp_path):
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(SettingsError, match="cannot load the TLS files"):
        Connection(security_protocol="SSL", ssl_cafile=str(bad)).ssl_context()


def test_cli_prints_one_line_for_a_bad_client_config(tmp_path):
    path = write(tmp_path, "security.protocol=SSL\nssl.keystore.password=x\n")
    done = subprocess.run([sys.executable, "-m", "gplx_bus.cli", "topics", "apply", "--client-config", path],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"gplx-bus: error: {path}: unsupported key 'ssl.keystore.password'; supported: "
                                   + ", ".join(connection.SUPPORTED_KEYS))


def test_processor_worker_gets_the_connection_through_its_environment(tmp_path, pem):
    """What `python -m topology.processor` does with the environment the CLI / demo give it (Connection.to_env)."""
    from topology.processor.app import create_app
    from topology.processor.settings import ProcessorSettings

    path = write(tmp_path, f"security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.username=case-processor\n"
                           f"sasl.password=pw\nssl.ca.location={pem['ca']}\n")
    conn = Connection.from_env({"SCHEMA_REGISTRY_USER": "ops", "SCHEMA_REGISTRY_PASSWORD": "rpw"},
                               bootstrap="k:9093", client_config=path, prefix="t-")
    settings = ProcessorSettings.from_env({**conn.to_env(), "GPLX_STORE": "memory://",
                                           "GPLX_DATADIR": str(tmp_path / "worker")})
    assert settings.connection == conn and settings.app_id == "t-gplx-case-processor"
    app = create_app(settings)  # builds, connects to nothing
    credentials = app.conf.broker_credentials
    assert (credentials.username, credentials.password) == ("case-processor", "pw")
    assert credentials.mechanism.value == "PLAIN"
    assert credentials.protocol.value == "SASL_SSL" and [str(u) for u in app.conf.broker] == ["kafka://k:9093"]
