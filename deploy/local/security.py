"""The secured local stack's files: CA, broker keystore, SCRAM passwords and one client config per principal.

Layout of `<run folder>/secure/` (every file holding a secret is 0600, the folder 0700):
    ca.pem                    the CA certificate clients trust (ssl.truststore.location / ssl.ca.location)
    ca-key.pem                the CA's key (kept so more certificates can be issued for this run)
    broker.pem                the broker's key + certificate chain (ssl.keystore.type=PEM)
    credentials.json          {user name: password} for every SCRAM user, admin included
    clients/<user>.properties Kafka's own client config (`--command-config`; ours read it with topology.connection)
    clients/<user>.kcat.properties  the same for librdkafka (`kcat -F`): librdkafka rejects the Java key names

Trust choices (issue 11):
- the client listener is SASL_SSL with SCRAM-SHA-512 only; inter-broker traffic uses it too, as User:admin;
- the KRaft controller listener is PLAINTEXT on 127.0.0.1 (SCRAM is unsupported there, KAFKA-15513). Its callers
  (a broker registering and heartbeating with the controller, even inside one combined process) arrive as
  User:ANONYMOUS and need CLUSTER_ACTION before any ACL can exist (ACLs live in the metadata log the controller
  serves), so ANONYMOUS is a super user. The price: any local process that reaches the loopback controller port
  is a super user there. Acceptable for a developer's loopback stack; a shared deployment needs mTLS on the
  controller listener with the controller certificate's principal as the super user instead.
"""
from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from deploy.local import tls
from deploy.local.errors import LauncherError

ADMIN_USER = "admin"
SCRAM_MECHANISM = "SCRAM-SHA-512"
SUPER_USERS = (f"User:{ADMIN_USER}", "User:ANONYMOUS")
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
_SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule"


def new_password() -> str:
    return secrets.token_urlsafe(24)


def user_name(principal: str) -> str:
    """SCRAM user name of a principal: "User:province-01" -> "province-01" (a bare name passes through)."""
    kind, sep, name = principal.partition(":")
    if sep and kind != "User":
        raise LauncherError(f"{principal!r} is not a user principal; SCRAM users are named User:<name>")
    name = name if sep else principal
    if not name or any(c in name for c in "\"'\\=, \n"):
        raise LauncherError(f"{principal!r} is not a usable SCRAM user name (letters, digits, '-', '_', '.')")
    return name


def write_private(path: Path, text: str | bytes) -> Path:
    """Write a file readable by its owner only; created 0600 from the start, never world-readable for a moment."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    data = text.encode() if isinstance(text, str) else text
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(path, 0o600)  # an existing file keeps its old mode through O_CREAT
    return path


def _jaas(user: str, password: str) -> str:
    return f'{_SCRAM_LOGIN} required username="{user}" password="{password}";'


def client_properties(user: str, password: str, ca_path: Path, bootstrap: str | None = None) -> str:
    """Kafka's client config keys, as `kafka-topics.sh --command-config` and every Java client read them."""
    lines = [f"bootstrap.servers={bootstrap}"] if bootstrap else []
    lines += [
        "security.protocol=SASL_SSL",
        f"sasl.mechanism={SCRAM_MECHANISM}",
        f"sasl.jaas.config={_jaas(user, password)}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={ca_path}",
    ]
    return "\n".join(lines) + "\n"


def librdkafka_properties(user: str, password: str, ca_path: Path, bootstrap: str | None = None) -> str:
    """The same for librdkafka (`kcat -F FILE`, confluent-kafka): its own key names."""
    lines = [f"bootstrap.servers={bootstrap}"] if bootstrap else []
    lines += [
        "security.protocol=SASL_SSL",
        f"sasl.mechanisms={SCRAM_MECHANISM}",
        f"sasl.username={user}",
        f"sasl.password={password}",
        f"ssl.ca.location={ca_path}",
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class SecureFiles:
    """The secure/ folder of one run."""

    root: Path

    @property
    def ca(self) -> Path:
        return self.root / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca-key.pem"

    @property
    def keystore(self) -> Path:
        return self.root / "broker.pem"

    @property
    def credentials(self) -> Path:
        return self.root / "credentials.json"

    @property
    def clients(self) -> Path:
        return self.root / "clients"

    def client_config(self, user: str) -> Path:
        return self.clients / f"{user}.properties"

    def kcat_config(self, user: str) -> Path:
        return self.clients / f"{user}.kcat.properties"

    # -- creation ------------------------------------------------------------------------------------------------
    def create(self, hosts: tuple[str, ...] = tls.LOCAL_HOSTS) -> str:
        """CA, broker keystore and the admin password; returns the admin password (for format --add-scram)."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        ca = tls.generate_ca()
        broker = tls.issue_server_cert(ca, hosts)
        self.ca.write_bytes(ca.cert_pem)  # public
        write_private(self.ca_key, ca.key_pem)
        write_private(self.keystore, tls.keystore_pem(broker, ca))
        password = new_password()
        self.save_password(ADMIN_USER, password)
        return password

    # -- passwords -----------------------------------------------------------------------------------------------
    def passwords(self) -> dict[str, str]:
        try:
            return json.loads(self.credentials.read_text())
        except FileNotFoundError:
            return {}

    def password(self, user: str) -> str:
        try:
            return self.passwords()[user]
        except KeyError:
            raise LauncherError(f"no password for {user!r} in {self.credentials}; "
                                f"create it with `gplx-bus users add User:{user}`") from None

    def save_password(self, user: str, password: str, bootstrap: str | None = None) -> Path:
        """Record the password and (re)write the user's two client config files; returns the Kafka one."""
        passwords = self.passwords()
        passwords[user] = password
        write_private(self.credentials, json.dumps(passwords, indent=2, sort_keys=True) + "\n")
        write_private(self.kcat_config(user), librdkafka_properties(user, password, self.ca, bootstrap))
        return write_private(self.client_config(user), client_properties(user, password, self.ca, bootstrap))

    # -- the broker's side ---------------------------------------------------------------------------------------
    def server_properties(self, broker_port: int, controller_port: int) -> list[str]:
        """Listener, TLS, SASL and authorizer lines of server.properties (the file itself is made 0600)."""
        return [
            f"listeners=SASL_SSL://127.0.0.1:{broker_port},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners=SASL_SSL://127.0.0.1:{broker_port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=SASL_SSL",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL",
            f"sasl.enabled.mechanisms={SCRAM_MECHANISM}",
            f"sasl.mechanism.inter.broker.protocol={SCRAM_MECHANISM}",
            f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
            f"{_jaas(ADMIN_USER, self.password(ADMIN_USER))}",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={self.keystore}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={self.ca}",
            f"authorizer.class.name={AUTHORIZER}",
            "allow.everyone.if.no.acl.found=false",
            "super.users=" + ";".join(SUPER_USERS),
        ]

    def format_args(self) -> list[str]:
        """StorageTool arguments that create the admin's SCRAM credential before the first start."""
        return ["--add-scram", f"{SCRAM_MECHANISM}=[name={ADMIN_USER},password={self.password(ADMIN_USER)}]"]


def upsert_scram_users(admin, passwords: dict[str, str]) -> None:
    """Create or replace SCRAM-SHA-512 credentials through the admin API; raises LauncherError naming a failure."""
    from kafka.admin import ScramMechanism, UserScramCredentialUpsertion

    if not passwords:
        return
    result = admin.alter_user_scram_credentials(
        [UserScramCredentialUpsertion(user, ScramMechanism.SCRAM_SHA_512, pw) for user, pw in passwords.items()])
    failed = {user: error for user, error in result.items() if error}
    if failed:
        raise LauncherError(f"the broker refused SCRAM credentials: {failed}")


def wait_scram_users(admin, users: list[str], timeout: float = 30.0) -> None:
    """Poll until the broker lists every user's credential (written to the metadata log, then applied)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        known = admin.describe_user_scram_credentials(users)
        missing = [u for u in users if known.get(u, {}).get("error") or not known.get(u, {}).get("credential_infos")]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise LauncherError(f"SCRAM credentials not visible after {timeout:.0f}s for {missing[:5]}")
        time.sleep(0.1)  # pacing between polls
