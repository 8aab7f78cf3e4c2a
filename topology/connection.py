"""Connection settings in one place: the cluster, its security, the schema registry, the topic prefix.

The environment is read here and nowhere else in the code packages: `Connection.from_env()` reads it once into a
frozen `Connection`, which the composition root (the `gplx-bus` CLI, tests) hands down to the library classes;
they never look at the environment themselves. Every library class that takes `bootstrap_servers` accepts either a
plain "host:port[,host:port]" string (a PLAINTEXT cluster, as before) or a `Connection`; `str(connection)` is its
bootstrap servers, so messages naming the cluster read the same either way.

Security comes from a standard Kafka client properties file (`--client-config FILE` / KAFKA_CLIENT_CONFIG): the
file an operator gives Kafka's own tools (`--command-config`) works as is, and so do kcat's (`-F`) spellings:

    security.protocol=SASL_SSL
    sasl.mechanism=SCRAM-SHA-512
    sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\
        username="province-01" password="...";
    ssl.truststore.type=PEM
    ssl.truststore.location=/etc/gplx/ca.pem

Only the keys below are understood; any other key is refused with one line naming it and the file, rather than
silently ignored (a misspelt key would otherwise mean an unsecured connection). The translators turn one
`Connection` into what each client library wants: kafka-python, aiokafka, faust, confluent-kafka.

This module imports nothing of ours (a leaf), so every package may use it.
"""
from __future__ import annotations

import os
import re
import ssl
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping
from topology.errors import SettingsError  # noqa: F401 - defined there, imported here as before

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"  # `gplx-bus local up`
DEFAULT_REGISTRY_URL = "http://127.0.0.1:8081/apis/ccompat/v7"

# Environment variables (the CLI options' envvars; a subprocess gets them back from `to_env()`).
BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"
CLIENT_CONFIG_ENV = "KAFKA_CLIENT_CONFIG"
REGISTRY_URL_ENV = "SCHEMA_REGISTRY_URL"
REGISTRY_USER_ENV = "SCHEMA_REGISTRY_USER"
REGISTRY_PASSWORD_ENV = "SCHEMA_REGISTRY_PASSWORD"  # environment only: a password on a command line is in `ps`
PREFIX_ENV = "GPLX_TOPIC_PREFIX"

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
# key -> what it means here; the keys of Kafka's Java clients, plus librdkafka's (kcat) where they differ.
SUPPORTED_KEYS = {
    "bootstrap.servers": "the cluster (an option or KAFKA_BOOTSTRAP_SERVERS wins)",
    "security.protocol": "|".join(PROTOCOLS),
    "sasl.mechanism": "|".join(MECHANISMS),
    "sasl.mechanisms": "librdkafka's spelling of sasl.mechanism",
    "sasl.jaas.config": "PlainLoginModule or ScramLoginModule with username=\"...\" password=\"...\"",
    "sasl.username": "librdkafka's SASL user",
    "sasl.password": "librdkafka's SASL password",
    "ssl.truststore.type": "PEM (JKS and PKCS12 need Java: export the CA with keytool -exportcert -rfc)",
    "ssl.truststore.location": "PEM file of the CA certificates",
    "ssl.ca.location": "librdkafka's spelling of the PEM truststore",
    "ssl.keystore.type": "PEM",
    "ssl.keystore.location": "PEM file with this client's certificate chain and private key (mutual TLS)",
    "ssl.key.password": "password of that private key",
    "ssl.endpoint.identification.algorithm": "https (default) or empty: check the broker's host name or not",
}


def environment() -> Mapping[str, str]:
    """The process environment. The code packages read it through here only (tests check this), and only where
    the composition root did not hand a value down: worker settings of the processor, the replication factor."""
    return os.environ


@dataclass(frozen=True)
class Connection:
    """Where and how to connect. Secrets are kept out of repr() so a logged Connection leaks nothing."""

    bootstrap: str = DEFAULT_BOOTSTRAP
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None  # None: the system's CA certificates
    ssl_certfile: str | None = None  # client certificate chain + key (PEM), for mutual TLS
    ssl_key_password: str | None = field(default=None, repr=False)
    ssl_check_hostname: bool = True
    registry_url: str = DEFAULT_REGISTRY_URL
    registry_username: str | None = None
    registry_password: str | None = field(default=None, repr=False)
    prefix: str = ""
    client_config: str | None = None  # the properties file the security settings came from

    def __str__(self) -> str:
        return self.bootstrap

    # ---- building ----------------------------------------------------------------------------------------------

    @classmethod
    def of(cls, value: "str | Connection") -> "Connection":
        """A Connection as given, or a PLAINTEXT one to the bootstrap servers in a string."""
        return value if isinstance(value, Connection) else cls(bootstrap=value)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, bootstrap: str | None = None,
                 client_config: str | Path | None = None, registry_url: str | None = None,
                 registry_user: str | None = None, prefix: str | None = None) -> "Connection":
        """Read the environment once: explicit values (CLI options) win, then the environment, then the client
        properties file (bootstrap.servers only), then the local stack's defaults."""
        env = environment() if environ is None else environ
        path = str(client_config or env.get(CLIENT_CONFIG_ENV) or "") or None
        security = security_from_properties(read_properties(path), path) if path else {}
        file_bootstrap = security.pop("bootstrap", None)
        user = registry_user or env.get(REGISTRY_USER_ENV) or None
        password = env.get(REGISTRY_PASSWORD_ENV) or None
        if password and not user:
            raise SettingsError(f"{REGISTRY_PASSWORD_ENV} is set without a user: set {REGISTRY_USER_ENV} "
                                "(or --registry-user) too")
        return cls(bootstrap=bootstrap or env.get(BOOTSTRAP_ENV) or file_bootstrap or DEFAULT_BOOTSTRAP,
                   registry_url=registry_url or env.get(REGISTRY_URL_ENV) or DEFAULT_REGISTRY_URL,
                   registry_username=user, registry_password=password,
                   prefix=env.get(PREFIX_ENV, "") if prefix is None else prefix,
                   client_config=path, **security)

    def with_endpoints(self, bootstrap: str, registry_url: str | None = None) -> "Connection":
        """The same security settings for another cluster (e.g. one the demo just started)."""
        return replace(self, bootstrap=bootstrap, registry_url=registry_url or self.registry_url)

    def to_env(self) -> dict[str, str]:
        """The environment of a subprocess (the processor worker) that should connect the same way. Every
        variable is set, empty where unset, so nothing inherited from the parent's environment can change it."""
        return {BOOTSTRAP_ENV: self.bootstrap, CLIENT_CONFIG_ENV: self.client_config or "",
                REGISTRY_URL_ENV: self.registry_url, REGISTRY_USER_ENV: self.registry_username or "",
                REGISTRY_PASSWORD_ENV: self.registry_password or "", PREFIX_ENV: self.prefix}

    # ---- translators -------------------------------------------------------------------------------------------

    @property
    def uses_ssl(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def registry_auth(self) -> tuple[str, str] | None:
        """HTTP basic-auth credentials of the schema registry, or None."""
        return (self.registry_username, self.registry_password or "") if self.registry_username else None

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of SSL / SASL_SSL (CA from the PEM truststore, client certificate if any), else None."""
        if not self.uses_ssl:
            return None
        try:
            context = ssl.create_default_context(cafile=self.ssl_cafile)
            context.check_hostname = self.ssl_check_hostname
            if self.ssl_certfile:
                context.load_cert_chain(self.ssl_certfile, password=self.ssl_key_password)
        except (OSError, ssl.SSLError) as exc:
            raise SettingsError(f"cannot load the TLS files of {self.client_config or 'the connection'} "
                                f"({type(exc).__name__}: {exc}); check ssl.truststore.location and "
                                "ssl.keystore.location") from None
        return context

    def _python_client_kwargs(self) -> dict:
        kwargs: dict = {"bootstrap_servers": self.bootstrap, "security_protocol": self.security_protocol}
        if self.uses_sasl:
            kwargs.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.sasl_username,
                          sasl_plain_password=self.sasl_password)
        if self.uses_ssl:
            kwargs["ssl_context"] = self.ssl_context()
        return kwargs

    def kafka_python_kwargs(self) -> dict:
        """Keyword arguments of kafka-python's KafkaProducer / KafkaConsumer / KafkaAdminClient."""
        return self._python_client_kwargs()

    def aiokafka_kwargs(self) -> dict:
        """Keyword arguments of aiokafka's AIOKafkaProducer / AIOKafkaConsumer / AIOKafkaAdminClient (same names
        as kafka-python's for these settings)."""
        return self._python_client_kwargs()

    def faust_broker_credentials(self):
        """faust's `broker_credentials`: None (PLAINTEXT), SSLCredentials, or SASLCredentials (with the TLS
        context for SASL_SSL)."""
        if not (self.uses_ssl or self.uses_sasl):
            return None
        import faust  # here, so that only the processor needs faust

        if not self.uses_sasl:
            return faust.SSLCredentials(self.ssl_context())
        return faust.SASLCredentials(username=self.sasl_username, password=self.sasl_password,
                                     mechanism=self.sasl_mechanism, ssl_context=self.ssl_context())

    def confluent_config(self) -> dict[str, str]:
        """librdkafka's configuration (confluent-kafka's Producer/Consumer/AdminClient)."""
        config = {"bootstrap.servers": self.bootstrap, "security.protocol": self.security_protocol.lower()}
        if self.uses_sasl:
            config.update({"sasl.mechanism": self.sasl_mechanism, "sasl.username": self.sasl_username,
                           "sasl.password": self.sasl_password})
        if self.uses_ssl:
            config["ssl.endpoint.identification.algorithm"] = "https" if self.ssl_check_hostname else "none"
            if self.ssl_cafile:
                config["ssl.ca.location"] = self.ssl_cafile
            if self.ssl_certfile:
                config["ssl.certificate.location"] = self.ssl_certfile
                config["ssl.key.location"] = self.ssl_certfile
                if self.ssl_key_password:
                    config["ssl.key.password"] = self.ssl_key_password
        return config


# ---- the properties file ----------------------------------------------------------------------------------------

_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def parse_properties(text: str) -> dict[str, str]:
    """A Java .properties text as java.util.Properties.load reads it: `key=value`, `key: value` or `key value`;
    `#` and `!` comments; a line ending in an odd number of backslashes continues on the next (whose leading
    blanks are dropped); backslash escapes (\\t, \\n, \\uXXXX, and \\x for any other x)."""
    logical, pending = [], None
    for line in text.splitlines():
        stripped = line.lstrip(" \t\f")
        if pending is None and (not stripped or stripped[0] in "#!"):
            continue
        trailing = len(stripped) - len(stripped.rstrip("\\"))
        body = stripped[:-1] if trailing % 2 else stripped
        pending = body if pending is None else pending + body
        if not trailing % 2:
            logical.append(pending)
            pending = None
    if pending is not None:
        logical.append(pending)
    properties = {}
    for line in logical:
        key, value = _split_key(line)
        properties[_unescape(key)] = _unescape(value)
    return properties


def _split_key(line: str) -> tuple[str, str]:
    i, n = 0, len(line)
    while i < n and line[i] not in "=: \t\f":
        i += 2 if line[i] == "\\" else 1
    key, rest = line[:i], line[i:].lstrip(" \t\f")
    if rest[:1] in ("=", ":"):
        rest = rest[1:].lstrip(" \t\f")
    return key, rest


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[i + 2:i + 6]):
                out.append(chr(int(text[i + 2:i + 6], 16)))
                i += 6
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def read_properties(path: str | Path) -> dict[str, str]:
    try:
        return parse_properties(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"cannot read the client config {path} ({exc.strerror or type(exc).__name__}); "
                            f"pass an existing file to --client-config / {CLIENT_CONFIG_ENV}") from None


_JAAS = re.compile(r"^\s*(?P<module>[\w.$]+)\s+(?:required|requisite|sufficient|optional)(?P<options>.*?);?\s*$",
                   re.S)
_JAAS_OPTION = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s;"]+))')
_LOGIN_MODULES = {"org.apache.kafka.common.security.plain.PlainLoginModule": ("PLAIN",),
                  "org.apache.kafka.common.security.scram.ScramLoginModule": ("SCRAM-SHA-256", "SCRAM-SHA-512")}


def parse_jaas(value: str, where: str = "sasl.jaas.config") -> tuple[str, dict[str, str]]:
    """(login module, options) of a one-entry JAAS configuration such as
    `org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="secret";`."""
    match = _JAAS.match(value)
    if not match:
        raise SettingsError(f"{where}: not a JAAS entry; expected "
                            '<LoginModule> required username="..." password="...";')
    options = {m.group(1): re.sub(r"\\(.)", r"\1", m.group(2)) if m.group(2) is not None else m.group(3)
               for m in _JAAS_OPTION.finditer(match.group("options"))}
    return match.group("module"), options


def security_from_properties(props: Mapping[str, str], path: str = "the client config") -> dict:
    """The `Connection` fields of a client properties file; SettingsError on any key or value we cannot honour
    (refused, not ignored: a setting dropped silently could mean a connection without the security asked for)."""
    unknown = sorted(set(props) - set(SUPPORTED_KEYS))
    if unknown:
        raise SettingsError(f"{path}: unsupported key {unknown[0]!r}; supported: {', '.join(SUPPORTED_KEYS)}")

    def refuse(key: str, why: str) -> SettingsError:
        return SettingsError(f"{path}: {key}={props.get(key, '')!r}: {why}")

    protocol = props.get("security.protocol", "PLAINTEXT").strip().upper()
    if protocol not in PROTOCOLS:
        raise refuse("security.protocol", f"use one of {', '.join(PROTOCOLS)}")
    fields: dict = {"security_protocol": protocol}
    if props.get("bootstrap.servers", "").strip():
        fields["bootstrap"] = props["bootstrap.servers"].strip()

    sasl_keys = [k for k in props if k.startswith("sasl.")]
    if protocol.startswith("SASL_"):
        mechanism_key = "sasl.mechanism" if "sasl.mechanism" in props else "sasl.mechanisms"
        mechanism = props.get(mechanism_key, "PLAIN").strip().upper()  # Kafka's default is PLAIN too
        if mechanism not in MECHANISMS:
            raise refuse(mechanism_key, f"use one of {', '.join(MECHANISMS)}")
        username, password = props.get("sasl.username"), props.get("sasl.password")
        if "sasl.jaas.config" in props:
            module, options = parse_jaas(props["sasl.jaas.config"], f"{path}: sasl.jaas.config")
            if mechanism not in _LOGIN_MODULES.get(module, ()):
                raise SettingsError(f"{path}: sasl.jaas.config: login module {module} does not go with "
                                    f"sasl.mechanism={mechanism}")
            username, password = options.get("username"), options.get("password")
        if not username or password is None:
            raise SettingsError(f"{path}: SASL needs a user and a password: sasl.jaas.config with "
                                'username="..." password="...", or sasl.username and sasl.password')
        fields.update(sasl_mechanism=mechanism, sasl_username=username, sasl_password=password)
    elif sasl_keys:
        raise SettingsError(f"{path}: {sasl_keys[0]} is set but security.protocol={protocol} uses no SASL; "
                            "set security.protocol=SASL_SSL (or SASL_PLAINTEXT)")

    ssl_keys = [k for k in props if k.startswith("ssl.")]
    if protocol in ("SSL", "SASL_SSL"):
        for key in ("ssl.truststore.type", "ssl.keystore.type"):
            if props.get(key, "PEM").strip().upper() != "PEM":
                raise refuse(key, "only PEM files are supported (export with keytool -exportcert -rfc, "
                                  "or openssl pkcs12 -nodes)")
        if "ssl.truststore.location" in props and "ssl.truststore.type" not in props:
            raise SettingsError(f"{path}: ssl.truststore.location needs ssl.truststore.type=PEM (Kafka's default "
                                "type is JKS, which only Java reads)")
        if "ssl.keystore.location" in props and "ssl.keystore.type" not in props:
            raise SettingsError(f"{path}: ssl.keystore.location needs ssl.keystore.type=PEM")
        cafile = props.get("ssl.truststore.location") or props.get("ssl.ca.location")
        certfile = props.get("ssl.keystore.location")
        for key, file in (("truststore", cafile), ("keystore", certfile)):
            if file and not Path(file).is_file():
                raise SettingsError(f"{path}: the ssl.{key}.location file {file} does not exist")
        algorithm = props.get("ssl.endpoint.identification.algorithm", "https").strip().lower()
        if algorithm not in ("https", "", "none"):
            raise refuse("ssl.endpoint.identification.algorithm", "use https, or an empty value to skip the check")
        fields.update(ssl_cafile=cafile, ssl_certfile=certfile, ssl_key_password=props.get("ssl.key.password"),
                      ssl_check_hostname=algorithm == "https")
    elif ssl_keys and any(props[k].strip() for k in ssl_keys if k != "ssl.endpoint.identification.algorithm"):
        raise SettingsError(f"{path}: {ssl_keys[0]} is set but security.protocol={protocol} uses no TLS; "
                            "set security.protocol=SSL (or SASL_SSL)")
    return fields
