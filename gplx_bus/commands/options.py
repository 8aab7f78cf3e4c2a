"""Options several commands share, declared once so their flags, defaults and environment variables agree.

The connection options (cluster, client properties file, registry, registry user, topic prefix) are the same on
every command that talks to Kafka or the registry; `connection(...)` turns their values into the one
`topology.connection.Connection` the command hands down. tests/unit/test_cli_options.py walks every command and
fails on a connection option declared any other way.
"""
from __future__ import annotations

from typing import Optional

import typer

from topology.connection import (BOOTSTRAP_ENV, CLIENT_CONFIG_ENV, DEFAULT_BOOTSTRAP, DEFAULT_REGISTRY_URL,
                                 PREFIX_ENV, REGISTRY_PASSWORD_ENV, REGISTRY_URL_ENV, REGISTRY_USER_ENV, Connection)

CONNECTION_PANEL = "Connection"


def check_bootstrap(value: str | None) -> str | None:
    """host:port[,host:port...] with a port 1-65535, said in one line before any client is built."""
    if value is None:
        return value
    for server in value.split(","):
        host, _, port = server.strip().split("://", 1)[-1].rpartition(":")  # a scheme (kafka://) may lead
        if not host or not port.isdigit() or not 0 < int(port) < 65536 or ":" in host.strip("[]"):
            raise typer.BadParameter(f"{server.strip()!r} is not host:port (e.g. 127.0.0.1:9092; several: "
                                     f"a:9092,b:9092)")
    return value


def bootstrap_servers(*aliases: str):
    return typer.Option(None, "--bootstrap-servers", "-b", *aliases, envvar=BOOTSTRAP_ENV,
                        metavar="HOST:PORT[,HOST:PORT]", rich_help_panel=CONNECTION_PANEL, callback=check_bootstrap,
                        help=f"The Kafka cluster (default {DEFAULT_BOOTSTRAP}, the local stack).")


def client_config():
    return typer.Option(None, "--client-config", envvar=CLIENT_CONFIG_ENV, metavar="FILE",
                        rich_help_panel=CONNECTION_PANEL,
                        help="Kafka client properties file, as for Kafka's --command-config (or kcat -F): "
                             "security.protocol, sasl.mechanism, sasl.jaas.config, ssl.truststore.type=PEM, "
                             "ssl.truststore.location, ...")


def registry_url(*aliases: str):
    return typer.Option(None, "--registry-url", *aliases, envvar=REGISTRY_URL_ENV, metavar="URL",
                        rich_help_panel=CONNECTION_PANEL,
                        help=f"Confluent-compatible schema registry (default {DEFAULT_REGISTRY_URL}).")


def registry_user():
    return typer.Option(None, "--registry-user", envvar=REGISTRY_USER_ENV, metavar="USER",
                        rich_help_panel=CONNECTION_PANEL,
                        help=f"Schema registry basic-auth user; the password only from ${REGISTRY_PASSWORD_ENV}.")


def topic_prefix():
    return typer.Option("", "--prefix", envvar=PREFIX_ENV, rich_help_panel=CONNECTION_PANEL,
                        help="Topic and consumer-group name prefix (e.g. for a test environment).")


def connection(bootstrap: Optional[str], client_config_file: Optional[str], registry: Optional[str],
               user: Optional[str], prefix: str) -> Connection:
    """The command's Connection: its options (typer already folded their environment variables in), the
    registry password from the environment, the security settings from the client properties file.
    Remembered as `last_connection` so the CLI can say why, should a Kafka client give up connecting."""
    global last_connection
    last_connection = Connection.from_env(bootstrap=bootstrap, client_config=client_config_file,
                                          registry_url=registry, registry_user=user, prefix=prefix)
    return last_connection


#: The Connection the running command built (None before it built one): for gplx_bus.cli's one-line errors.
last_connection: Optional[Connection] = None


def verbose():
    return typer.Option(False, "--verbose", "-v", help="Debug logging on stderr.")


# --- the case store and the status API ----------------------------------------------------------------------------
CASESTORE_DB_ENV = "GPLX_CASESTORE_DB"
STATUS_KEYS_ENV = "GPLX_STATUS_KEYS"
DEFAULT_CASESTORE_DB = "sqlite:///./gplx-cases.db"


def database_url():
    return typer.Option(DEFAULT_CASESTORE_DB, "--database", envvar=CASESTORE_DB_ENV, metavar="URL",
                        help="The case store: sqlite:///FILE (created 0600) or postgresql://USER@HOST:PORT/DB"
                             "?passfile=FILE (no password in the URL).")


def keys_file():
    return typer.Option("./gplx-status-keys.json", "--keys-file", envvar=STATUS_KEYS_ENV, metavar="FILE",
                        help="The status API's keys file (0600; hashed API keys and the citizen-token secret), "
                             "made by `gplx-bus status keys add`.")
