"""The secured local stack (SASL_SSL + SCRAM-SHA-512, TLS, StandardAuthorizer) and the catalogue's ACLs on it.

One secured single node for the module, started by the launcher. Clients are kafka-python configured directly
from the launcher's client config files (the connection-settings module of issue 11 part 1 comes later).
The ACL matrix is generated from the catalogue: a topic or principal added to it is covered with no new code.
"""
from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import GroupAuthorizationFailedError, KafkaTimeoutError, TopicAuthorizationFailedError
from kafka.structs import OffsetAndMetadata

from deploy.local import jars, tls
from deploy.local.cluster import Endpoints, LocalCluster
from deploy.local.security import ADMIN_USER, SecureFiles, user_name
from topology.apply import TopologyError
from topology.connection import Connection, read_properties
from topology.diagnose import refuse_unreachable
from topology import acls
from topology import apply as topics
from topology.catalogue import CASE_PROCESSOR, CASE_PROCESSOR_APP_ID, AclBinding, Catalogue, Province, consumer_group

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PREFIX = f"sec{uuid.uuid4().hex[:6]}."
CATALOGUE = Catalogue.build(prefix=PREFIX, replication_factor=1, input_partitions=1,
                            provinces=[Province("01", "Hà Nội"), Province("79", "Hồ Chí Minh")])
PRINCIPALS = sorted({a.principal for a in CATALOGUE.acls()})
_TIMEOUT_MS = 8000


@dataclass
class Secured:
    cluster: LocalCluster
    endpoints: Endpoints
    start_seconds: float

    @property
    def files(self) -> SecureFiles:
        return self.cluster.secure

    def login(self, principal: str) -> dict:
        return client_kwargs(self.files.client_config(user_name(principal)))

    def admin(self) -> KafkaAdminClient:
        return KafkaAdminClient(**self.login(ADMIN_USER), client_id="test-admin")


def client_kwargs(path) -> dict:
    """kafka-python's arguments for a generated client config, read as every command of ours reads one."""
    return Connection.from_env({}, client_config=path).kafka_python_kwargs()


@pytest.fixture(scope="module")
def secured():
    cluster = LocalCluster(with_registry=False, secure=True, principals=PRINCIPALS)
    started = time.monotonic()
    endpoints = cluster.start()
    try:
        yield Secured(cluster, endpoints, time.monotonic() - started)
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def applied(secured):
    """The catalogue's topics and ACLs on the secured broker, one record in partition 0 of every topic."""
    admin = secured.admin()
    try:
        topics.apply(topics.plan(CATALOGUE, admin), admin)
        acls.apply(acls.plan(CATALOGUE, admin), CATALOGUE, admin)
    finally:
        admin.close()
    producer = KafkaProducer(**secured.login(ADMIN_USER), max_block_ms=_TIMEOUT_MS)
    for name in CATALOGUE.names():
        producer.send(name, key=b"k", value=b"seed", partition=0).get(timeout=10)
    producer.close()
    return secured


# -- the matrix ------------------------------------------------------------------------------------------------
def _granted(bindings: list[AclBinding], principal: str, resource_type: str, name: str, operation: str) -> bool:
    """What the catalogue grants, by Kafka's own matching rules (LITERAL, '*' wildcard, PREFIXED; ALL covers all)."""
    return any(
        b.principal == principal and b.resource_type == resource_type and b.permission == "ALLOW"
        and b.operation in (operation, "ALL")
        and (b.resource_name == name or (b.pattern_type == "LITERAL" and b.resource_name == "*")
             or (b.pattern_type == "PREFIXED" and name.startswith(b.resource_name)))
        for b in bindings)


def _expected(principal: str, topic: str) -> dict[str, bool]:
    bindings = CATALOGUE.acls()
    group = CATALOGUE.prefix + consumer_group(principal)
    return {
        "produce": _granted(bindings, principal, "TOPIC", topic, "WRITE"),
        "consume": (_granted(bindings, principal, "TOPIC", topic, "READ")
                    and _granted(bindings, principal, "GROUP", group, "READ")),
    }


def _try_produce(producer: KafkaProducer, topic: str) -> str:
    try:
        producer.send(topic, key=b"k", value=b"matrix").get(timeout=10)
        return "allowed"
    except TopicAuthorizationFailedError:
        return "refused"


def _try_consume(consumer: KafkaConsumer, topic: str) -> str:
    """Commit an offset in the principal's group, then fetch the seed record (what a group consumer does).

    The commit comes first because it is the quick authorization check: OffsetCommit needs READ on the group and
    on the topic. A fetch from a topic one may not read just returns nothing until the poll times out.
    """
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    try:
        consumer.commit({tp: OffsetAndMetadata(0, "", -1)})
        consumer.seek_to_beginning(tp)
        deadline = time.monotonic() + 10
        while not consumer.poll(timeout_ms=500).get(tp):
            assert time.monotonic() < deadline, f"allowed to read {topic}, but its seed record never came"
        return "allowed"
    except (TopicAuthorizationFailedError, GroupAuthorizationFailedError):
        return "refused"
    finally:
        consumer.assign([])


def _row(secured: Secured, principal: str) -> list[tuple[str, str, str, str, str]]:
    """(principal, topic, action, expected, got) for every topic; one producer and one consumer per principal."""
    login = secured.login(principal)
    producer = KafkaProducer(**login, max_block_ms=_TIMEOUT_MS, request_timeout_ms=_TIMEOUT_MS, retries=0)
    consumer = KafkaConsumer(**login, group_id=CATALOGUE.prefix + consumer_group(principal),
                             enable_auto_commit=False, request_timeout_ms=_TIMEOUT_MS + 2000)
    cells = []
    try:
        for topic in CATALOGUE.names():
            expected = _expected(principal, topic)
            for action, attempt in (("produce", _try_produce), ("consume", _try_consume)):
                got = attempt(producer if action == "produce" else consumer, topic)
                cells.append((principal, topic, action, "allowed" if expected[action] else "refused", got))
    finally:
        producer.close(timeout=5)
        consumer.close()
    return cells


def test_acl_matrix_from_the_catalogue(applied):
    started = time.monotonic()
    with ThreadPoolExecutor(len(PRINCIPALS)) as pool:
        cells = [cell for row in pool.map(lambda p: _row(applied, p), PRINCIPALS) for cell in row]
    seconds = time.monotonic() - started
    allowed = sum(1 for c in cells if c[4] == "allowed")
    wrong = [c for c in cells if c[3] != c[4]]
    print(f"\nACL matrix: {len(PRINCIPALS)} principals x {len(CATALOGUE)} topics x produce/consume = {len(cells)} "
          f"cells tried, {allowed} allowed, {len(cells) - allowed} refused, {len(wrong)} wrong, {seconds:.1f}s")
    assert len(cells) == len(PRINCIPALS) * len(CATALOGUE) * 2
    assert 0 < allowed < len(cells)
    assert not wrong, "\n".join(f"{p} {a} {t}: expected {e}, got {g}" for p, t, a, e, g in wrong)


def test_processor_creates_no_topic_and_uses_its_changelogs(applied):
    """`topics apply` creates the processor's changelogs (Catalogue.internal); the processor itself may read and
    write them but create no topic, not even under its app id."""
    from kafka.admin import NewTopic

    app_id = CATALOGUE.prefix + CASE_PROCESSOR_APP_ID
    admin = KafkaAdminClient(**applied.login(CASE_PROCESSOR), client_id="test-processor")
    try:
        assert {t.name for t in CATALOGUE.internal} <= set(admin.list_topics())
        for name in (f"{app_id}-__assignor-__leader", f"{app_id}-other-changelog", CATALOGUE.prefix + "mine"):
            with pytest.raises(TopicAuthorizationFailedError):
                admin.create_topics([NewTopic(name, 1, 1)])
    finally:
        admin.close()


# -- refusals at the door --------------------------------------------------------------------------------------
def _other_ca(tmp_path: Path) -> Path:
    path = tmp_path / "other-ca.pem"
    path.write_bytes(tls.generate_ca("another CA").cert_pem)
    return path


@pytest.mark.parametrize("case", ["no credentials", "wrong password", "plaintext to the TLS port",
                                  "certificate from another CA"])
def test_the_broker_refuses(secured, case, tmp_path, caplog):
    login = secured.login("User:portal")
    settings = {
        "no credentials": {"security_protocol": "SSL", "ssl_context": login["ssl_context"]},
        "wrong password": {**login, "sasl_plain_password": "not-the-password"},
        "plaintext to the TLS port": {"security_protocol": "PLAINTEXT"},
        "certificate from another CA": {**login, "ssl_context": Connection(
            security_protocol="SASL_SSL", ssl_cafile=str(_other_ca(tmp_path))).ssl_context()},
    }[case]
    settings["bootstrap_servers"] = secured.endpoints.bootstrap_servers
    caplog.set_level(logging.DEBUG, logger="kafka")
    with pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
        KafkaAdminClient(**settings, bootstrap_timeout_ms=3000, request_timeout_ms=3000)
    # kafka-python reports every refusal as a bootstrap timeout; the cause is in what it logged on the way.
    causes = " | ".join(record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING)
    if case == "certificate from another CA":
        assert "CERTIFICATE_VERIFY_FAILED" in causes  # the client refuses the broker
    else:
        assert "socket disconnected" in causes  # the broker hung up: no TLS, no SASL login, or a bad proof
    # the same client with the right settings gets in (so the refusal above is the broker's answer to the case)
    KafkaAdminClient(**login, bootstrap_timeout_ms=5000).close()


def test_a_refused_connection_is_one_line_naming_its_cause(secured, tmp_path):
    """What a command prints for each refusal above (topology.diagnose): one line, exit 2, in seconds."""
    good = secured.files.client_config("portal")
    text = good.read_text()
    password = read_properties(good)["sasl.jaas.config"].split('password="')[1].split('"')[0]
    unreadable = tmp_path / "ca-unreadable.pem"
    unreadable.write_bytes(secured.files.ca.read_bytes())
    unreadable.chmod(0)
    files = {
        "no credentials": f"security.protocol=SSL\nssl.truststore.type=PEM\n"
                          f"ssl.truststore.location={secured.files.ca}\n",
        "wrong password": text.replace(password, "not-the-password"),
        "certificate from another CA": text.replace(str(secured.files.ca), str(_other_ca(tmp_path))),
        "missing truststore": text.replace(str(secured.files.ca), str(tmp_path / "no-such-ca.pem")),
    }
    if os.geteuid() != 0:  # root reads a 0000 file anyway
        files["unreadable truststore"] = text.replace(str(secured.files.ca), str(unreadable))
    args = {"plaintext to the TLS port": []}
    for case, content in files.items():
        (tmp_path / f"{case}.properties").write_text(content)
        args[case] = ["--client-config", str(tmp_path / f"{case}.properties")]
    expected = {
        "no credentials": "wants SASL",
        "wrong password": "refused the SCRAM-SHA-512 login of user 'portal'",
        "plaintext to the TLS port": "speaks TLS and this client PLAINTEXT",
        "certificate from another CA": "is not signed by a CA in",
        "missing truststore": "no-such-ca.pem does not exist",
        "unreadable truststore": "cannot load the TLS files",
    }

    def run(case: str) -> tuple[str, subprocess.CompletedProcess, float]:
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "gplx_bus.cli", "topics", "apply", "--dry-run",
                               "-b", secured.endpoints.bootstrap_servers, *args[case]],
                              capture_output=True, text=True, timeout=60, env={**os.environ, "GPLX_DEBUG": ""})
        return case, done, time.monotonic() - started

    with ThreadPoolExecutor(len(args)) as pool:
        results = list(pool.map(run, args))
    for case, done, seconds in results:
        assert done.returncode == 2 and "Traceback" not in done.stderr, (case, done.stderr)
        [line] = done.stderr.strip().splitlines()
        assert line.startswith("gplx-bus: error:") and expected[case] in line, (case, line)
        assert password not in line
    # The probe itself, in process: the line comes at once, not after the client's 10 s bootstrap timeout (the
    # commands' wall time above is mostly Python starting on a loaded machine).
    probe_seconds = {}
    for case in ("no credentials", "wrong password", "certificate from another CA", "plaintext to the TLS port"):
        conn = Connection.from_env({}, bootstrap=secured.endpoints.bootstrap_servers,
                                   client_config=(tmp_path / f"{case}.properties") if args[case] else None)
        started = time.monotonic()
        with pytest.raises(TopologyError, match=expected[case]):
            refuse_unreachable(conn, TopologyError)
        probe_seconds[case] = time.monotonic() - started
    assert max(probe_seconds.values()) < 5, probe_seconds
    print("\n" + "\n".join(f"{case}: command {seconds:.1f}s, probe {probe_seconds.get(case, 0):.2f}s: "
                            f"{done.stderr.strip()}" for case, done, seconds in results))


# -- acls apply through the CLI --------------------------------------------------------------------------------
def _cli(secured: Secured, *args: str) -> str:
    env = {**os.environ, "GPLX_HOME": str(Path(secured.endpoints.data_dir) / "home")}  # no local stack state
    result = subprocess.run([sys.executable, "-m", "gplx_bus.cli", *args,
                             "--client-config", str(secured.files.client_config(ADMIN_USER)),
                             "-b", secured.endpoints.bootstrap_servers],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_acls_apply_is_idempotent_dry_run_changes_nothing_foreign_untouched(applied):
    from kafka.admin import ACLFilter

    prefix = f"cli{uuid.uuid4().hex[:6]}."
    catalogue = Catalogue.build(prefix=prefix)
    stale = AclBinding("User:portal", "TOPIC", prefix + "retired.topic", "LITERAL", "WRITE")
    foreign = [
        AclBinding("User:someone-else", "TOPIC", prefix + "dlq", "LITERAL", "READ"),  # not a catalogue principal
        AclBinding("User:portal", "TOPIC", "elsewhere.dlq", "LITERAL", "READ"),  # outside the prefix
        AclBinding("User:portal", "TOPIC", prefix + "dlq", "LITERAL", "READ", permission="DENY"),  # a DENY
    ]
    admin = applied.admin()
    try:
        admin.create_acls([acls._to_kafka(a) for a in [stale, *foreign]])
        before = _settled_observe(admin, must_include=[stale, *foreign])

        dry = _cli(applied, "acls", "apply", "--dry-run", "--prefix", prefix)
        assert f"- {acls.describe(stale)}" in dry
        assert f"+ {acls.describe(catalogue.acls()[0])}" in dry
        assert set(acls.observe(admin)) == before, "--dry-run changed the cluster"

        first = _cli(applied, "acls", "apply", "--prefix", prefix)
        assert f"done: removed {acls.describe(stale)}" in first
        after = set(acls.observe(admin))
        assert set(catalogue.acls()) <= after and stale not in after
        assert set(foreign) <= after, "a binding the catalogue does not manage was touched"

        second = _cli(applied, "acls", "apply", "--prefix", prefix)
        assert "nothing to change" in second and "done:" not in second
        assert set(acls.observe(admin)) == after
        print(f"\nacls apply --prefix {prefix}: {len(catalogue.acls())} added, 1 stale removed, "
              f"{len(foreign)} foreign untouched; second apply: nothing to change")
    finally:
        admin.delete_acls([ACLFilter(f.principal, f.host, f.operation, f.permission_type, f.resource_pattern)
                           for f in map(acls._to_kafka, foreign)])
        admin.close()


def _settled_observe(admin, must_include: list[AclBinding], timeout: float = 15.0) -> set[AclBinding]:
    deadline = time.monotonic() + timeout
    while not set(must_include) <= (seen := set(acls.observe(admin))):
        assert time.monotonic() < deadline, "created ACLs did not show up"
        time.sleep(0.1)
    return seen


@pytest.mark.parametrize("args, words", [
    (["acls", "apply"], ["no admin login", "--client-config", "local up --secure"]),
    (["acls", "apply", "--client-config", "/nonexistent/admin.properties"], ["cannot read the client config"]),
    (["users", "add", "User:x"], ["no secrets folder", "--secrets-dir"]),
    (["users", "add", "Group:x", "--secrets-dir", "/tmp"], ["not a user principal", "User:<name>"]),
])
def test_acls_and_users_without_a_login_say_what_to_do(tmp_path, args, words):
    """No secured local stack, no usable file: one line naming the problem and the fix, no traceback."""
    result = subprocess.run([sys.executable, "-m", "gplx_bus.cli", *args], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "GPLX_HOME": str(tmp_path)})
    assert result.returncode != 0 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("gplx-bus: error:") and all(word in line for word in words), line


# -- users and client config files ----------------------------------------------------------------------------
def test_users_add_and_rotate(applied, tmp_path):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    shutil.copy(applied.files.ca, secrets / "ca.pem")
    files = SecureFiles(secrets)

    out = _cli(applied, "users", "add", "User:newcomer", "--secrets-dir", str(secrets))
    first = files.password("newcomer")
    assert first not in out
    config = files.client_config("newcomer")
    assert stat.S_IMODE(config.stat().st_mode) == 0o600 and stat.S_IMODE(files.credentials.stat().st_mode) == 0o600
    KafkaAdminClient(**client_kwargs(config), bootstrap_timeout_ms=5000).close()

    shown = _cli(applied, "users", "rotate", "User:newcomer", "--secrets-dir", str(secrets), "--show-password")
    second = files.password("newcomer")
    assert second != first and shown.strip() == second
    KafkaAdminClient(**client_kwargs(config), bootstrap_timeout_ms=5000).close()
    with pytest.raises(KafkaTimeoutError):  # the old password no longer logs in
        KafkaAdminClient(**{**client_kwargs(config), "sasl_plain_password": first}, bootstrap_timeout_ms=3000)


def test_client_configs_work_with_kafka_cli_and_kcat(applied):
    """The Kafka-keys file is what `--command-config` reads; the librdkafka one is what `kcat -F` reads."""
    lib = jars.ensure_kafka_jars(applied.endpoints.kafka_version)
    topics_cli = subprocess.run(
        ["java", "-cp", f"{lib}/*", "org.apache.kafka.tools.TopicCommand", "--list",
         "--bootstrap-server", applied.endpoints.bootstrap_servers,
         "--command-config", str(applied.files.client_config(ADMIN_USER))],
        capture_output=True, text=True, timeout=120)
    assert topics_cli.returncode == 0, topics_cli.stderr[-500:]
    assert CATALOGUE.name("dlq") in topics_cli.stdout.split()
    # The librdkafka file, read by librdkafka itself (confluent-kafka's bundled one).
    from confluent_kafka.admin import AdminClient

    librdkafka = AdminClient(read_properties(applied.files.kcat_config(ADMIN_USER)))
    assert CATALOGUE.name("dlq") in librdkafka.list_topics(timeout=15).topics
    # kcat, where its librdkafka can log in at all: before 2.6.1 librdkafka's SCRAM proof carries the nonce twice
    # and Kafka 4.x rejects it (librdkafka#4895, kcat#462); Debian's kcat 1.7.1 bundles 2.0.2.
    version = _kcat_librdkafka()
    if version is None or version < (2, 6, 1):
        pytest.skip(f"kcat with librdkafka {version or 'absent'} cannot do SCRAM with Kafka 4.x; "
                    "the Kafka CLI and librdkafka halves passed")
    kcat = subprocess.run(["kcat", "-F", str(applied.files.kcat_config(ADMIN_USER)), "-L", "-t", CATALOGUE.name("dlq")],
                          capture_output=True, text=True, timeout=60)
    assert kcat.returncode == 0, kcat.stderr[-500:]
    assert CATALOGUE.name("dlq") in kcat.stdout


def _kcat_librdkafka() -> tuple[int, ...] | None:
    import re

    if shutil.which("kcat") is None:
        return None
    match = re.search(r"librdkafka (\d+)\.(\d+)\.(\d+)", subprocess.run(["kcat", "-V"], capture_output=True,
                                                                          text=True).stdout)
    return tuple(map(int, match.groups())) if match else None


# -- start time ----------------------------------------------------------------------------------------------
def test_secured_start_time_vs_plain(secured):
    plain = LocalCluster(with_registry=False)
    started = time.monotonic()
    plain.start()
    plain_seconds = time.monotonic() - started
    plain.stop()
    print(f"\nstart-up (cluster.start(), one node): plain {plain_seconds:.1f}s, secured {secured.start_seconds:.1f}s "
          f"(CA + certificate, format with --add-scram, SASL_SSL readiness, {len(PRINCIPALS)} SCRAM users)")
    assert secured.endpoints.security_protocol == "SASL_SSL"


# -- the CLI's own secured stack -------------------------------------------------------------------------------
def test_local_up_secure_status_down(tmp_path):
    """`gplx-bus local up --secure` then `status` names the mode and the files; `down` removes the secrets."""
    from deploy.local.ports import free_port
    from deploy.local.settings import gplx_home

    home = tmp_path / "home"
    home.mkdir()
    (home / "jars").symlink_to(gplx_home() / "jars")  # the cached jars, not a new download
    env = {**os.environ, "GPLX_HOME": str(home)}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "gplx_bus.cli", "local", *args], capture_output=True,
                              text=True, timeout=300, env=env)

    up = cli("up", "--secure", "--no-registry", "--kafka-port", str(free_port()))
    try:
        assert up.returncode == 0, up.stderr
        status = cli("status")
        printed = status.stdout + status.stderr
        secure = home / "run" / "local" / "data" / "secure"
        assert status.returncode == 0 and "(SASL_SSL)" in printed
        assert str(secure / "clients" / "admin.properties") in "".join(printed.split())  # rich wraps long paths
        users = {p.name.removesuffix(".properties") for p in (secure / "clients").glob("*.properties")
                 if not p.name.endswith(".kcat.properties")}
        assert users == {"admin"} | {user_name(a.principal) for a in Catalogue.build(prefix="").acls()}
        assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in (secure / "clients").iterdir())
        assert _no_password_in(up.stdout + up.stderr + printed, secure)
    finally:
        down = cli("down")
    assert down.returncode == 0, down.stderr
    assert not (home / "run" / "local" / "data").exists()


def _no_password_in(output: str, secure: Path) -> bool:
    """No password of the run appears in what the commands printed."""
    import json

    return not any(pw in output for pw in json.loads((secure / "credentials.json").read_text()).values())
