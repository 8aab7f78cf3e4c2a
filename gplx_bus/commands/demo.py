"""`gplx-bus demo`: the main job, end to end on a real broker, with a readable report.

Uses the cluster in the environment (KAFKA_BOOTSTRAP_SERVERS / SCHEMA_REGISTRY_URL) or starts the local stack for
the duration of the run, and leaves nothing running. The steps, each one function below:

 1. topics under a fresh prefix (`demo-<time>-<random>.`), so re-runs on a shared cluster never see old data;
 2. the event schemas registered for those topics;
 3. the services: the case processor (faust worker subprocess, memory:// store, 6 input partitions: starts fast),
    the identity / police / payment adapters on the simulated day's databases (threads, temporary folder), the
    stand-in national portal and the issuance sink (threads): HTTPS with a CA generated for the run, the sink
    verifying the portal against it and signing its requests with a secret generated for the run (0600 file in
    the work folder) that the stand-in verifies;
 4. the simulated day (producers.simulator) published;
 5. waiting until nothing is in flight: every consumer group has read every record of its topics and no topic grew
    between two looks; progress shown live;
 6. the clock moved past the 5-working-day deadline of every case still open (ClockTicks on cases.clock), only
    then, so that no tick overtakes a fact;
 7. waiting until every application has a final decision and every approval is at the portal;
 8. the funnel per province, computed from the topics' contents and the portal's accepted issuances, and
    reconciled with the simulator's plan. Exit 1 if anything does not reconcile (e.g. an undecided application)
    or the time limit passed.

Everything started is stopped in reverse order on every exit path, Ctrl-C included.
"""
from __future__ import annotations

import datetime as dt
import logging
import shutil
import signal
import ssl
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.text import Text

from consumers.funnel import TopicReader, compute, funnel_table, reasons_table, reconcile
from consumers.lag.groups import group_topics
from consumers.lag.inflight import InFlight
from consumers.portal import IssuanceSink, StandinPortal, read_secret_file, write_secret_file
from consumers.portal.standin import write_tls_files
from deploy.local.cluster import LocalCluster
from deploy.local.process import ManagedProcess
from gplx_bus.commands import options as connection_options
from gplx_bus.commands.simulate import MAX_APPLICATIONS
from gplx_bus.errors import DemoError
from producers import simulator
from producers.adapters.runner import AdapterSet
from producers.principals import PrincipalPublishers
from producers.sdk import Publisher
from schemas.errors import TransientError
from schemas.registry import RegistryClient
from topology import apply as topology_apply
from topology import catalogue as topics
from topology.catalogue import Catalogue, load_current_provinces
from topology.connection import Connection
from deploy.local.security import user_name
from topology import acls as topology_acls
from topology import contracts

console = Console()

#: Partitions of the co-partitioned inputs in the demo: few, so the worker's group and tables start fast.
DEMO_INPUT_PARTITIONS = 6
#: The faust table store of the demo's worker: memory:// (no RocksDB files; the changelog still backs it).
DEMO_STORE = "memory://"
_FINAL_EVENTS = ("CaseApproved", "CaseRejected", "CaseEscalated")
#: The components the demo runs: their consumer groups must have read everything before the clock moves.
RUNNING = (topics.CASE_PROCESSOR, topics.IDENTITY, topics.POLICE, topics.PAYMENT, topics.PORTAL)


@contextmanager
def cluster_from_environment(conn: Connection, external: bool, secure: bool = False, principals=()):
    """Yield (connection, registry URL, where, login): the given cluster, or (not `external`) a local one started
    now; `secure`: SASL_SSL with a SCRAM user per principal, and login(principal) is that principal's Connection
    (None on a plain or external cluster: every component then connects as `connection`)."""
    if external:
        yield conn, conn.registry_url, f"cluster {conn}", None
        return
    with console.status("starting the local Kafka broker and schema registry (first run fetches jars)..."):
        cluster = LocalCluster(secure=secure, principals=principals)
        endpoints = cluster.start()

    def login(principal: str) -> Connection:
        return Connection.from_env({}, client_config=cluster.secure.client_config(user_name(principal)),
                                   bootstrap=endpoints.bootstrap_servers,
                                   registry_url=endpoints.schema_registry_url)
    try:
        yield (login("User:admin") if secure else
               Connection(bootstrap=endpoints.bootstrap_servers, registry_url=endpoints.schema_registry_url),
               endpoints.schema_registry_url,
               f"local Kafka {endpoints.kafka_version}{' secured (SASL_SSL, SCRAM, ACLs)' if secure else ''} "
               f"(ready in {endpoints.broker_start_seconds}s)", login if secure else None)
    finally:
        with console.status("stopping the local stack..."):
            cluster.stop()


@dataclass(frozen=True)
class DemoOptions:
    provinces: str = "01,79,48"
    applications: int = 300
    seed: int = 1
    keep: bool = False  # keep the run's topics, groups and work folder (logs, databases) for inspection
    timeout_s: float = 240.0  # the whole pipeline (not the broker start) must finish within this
    delete_topics: bool = True  # delete the run's topics at the end (pointless on a local stack that goes away)


@dataclass
class DemoResult:
    """What a run produced, for the report and for tests (which re-read the topics under `prefix`)."""

    prefix: str
    catalogue: object
    plan: object
    funnel: object = None
    problems: list[str] = field(default_factory=list)
    portal_stats: dict = field(default_factory=dict)
    portal_ids: set[str] = field(default_factory=set)  # issuance ids the stand-in portal accepted
    sink_stats: object = None
    ticks: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    workdir: Path | None = None  # the run's folder (logs, databases; 0700), gone at the end unless `keep`

    @property
    def ok(self) -> bool:
        return self.funnel is not None and not self.problems


def command(
    provinces: str = typer.Option("01,79,48", "--provinces", help="Province codes, comma-separated; an old (pre-"
                                  "July-2025) code is read as the province it merged into."),
    applications: int = typer.Option(300, "--applications", "-n", min=1, max=MAX_APPLICATIONS,
                                     help=f"Simulated applications (at most {MAX_APPLICATIONS:,})."),
    seed: int = typer.Option(1, "--seed", help="Same seed: same citizens and outcomes."),
    keep: bool = typer.Option(False, "--keep", help="Keep the run's topics and its work folder (logs, databases)."),
    timeout: float = typer.Option(240.0, "--timeout", min=10, help="Seconds the pipeline may take at most."),
    bootstrap: Optional[str] = connection_options.bootstrap_servers(),
    client_config: Optional[str] = connection_options.client_config(),
    registry_url: Optional[str] = connection_options.registry_url(),
    registry_user: Optional[str] = connection_options.registry_user(),
    secure: bool = typer.Option(True, "--secure/--plain", envvar="GPLX_LOCAL_SECURE",
                                help="The local stack secured (SASL_SSL, SCRAM, ACLs; every component logs in as "
                                     "its own principal), or plain (PLAINTEXT, no ACLs; GPLX_LOCAL_SECURE=0)."),
) -> None:
    """Run the main job: a simulated day through the whole bus, then the funnel per province. Starts what it
    needs (the local broker unless --bootstrap-servers / KAFKA_BOOTSTRAP_SERVERS is set; secured unless --plain,
    with the catalogue's ACLs and each component under its own principal) and stops all of it. The topics get a
    fresh prefix of their own every run.

    Example: gplx-bus demo --provinces 01,79 --applications 100
    """
    _quiet_libraries()
    signal.signal(signal.SIGTERM, _interrupt)  # a CI runner's SIGTERM unwinds like Ctrl-C: everything is stopped
    started = time.monotonic()
    conn = connection_options.connection(bootstrap, client_config, registry_url, registry_user, "")
    external = bootstrap is not None
    principals = sorted({a.principal for a in build_catalogue(provinces).acls()})
    with cluster_from_environment(conn, external, secure, principals) as (bootstrap, registry_url, where, login):
        console.print(f"[bold]gplx-bus demo[/] on {where}")
        options = DemoOptions(provinces, applications, seed, keep, timeout, delete_topics=external and not keep)
        result = run_demo(options, bootstrap, registry_url, login)
    console.print(f"demo finished in {time.monotonic() - started:.1f}s (everything stopped)")
    raise typer.Exit(0 if result.ok else 1)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run_demo(options: DemoOptions, bootstrap: str | Connection, registry_url: str, login=None) -> DemoResult:
    """The whole pipeline on a running cluster; prints progress and the report, returns what happened.
    `bootstrap` is passed on to every client as given: a Connection carries the security settings. With
    `login(principal) -> Connection` (a secured local stack, `bootstrap` the admin's), the catalogue's ACLs are
    applied and each component connects as its own principal."""

    def as_(principal: str):
        return login(principal) if login else bootstrap

    workdir = Path(tempfile.mkdtemp(prefix="gplx-demo-"))  # 0700: its databases hold personal data
    catalogue = build_catalogue(options.provinces)
    plan = simulator.make_plan(options.provinces, options.applications, options.seed)
    result = DemoResult(prefix=catalogue.prefix, catalogue=catalogue, plan=plan, workdir=workdir)
    deadline = time.monotonic() + options.timeout_s
    try:
        with ExitStack() as stack:
            with _step("topics", result):
                create_topics(bootstrap, catalogue, acls=login is not None)
            with _step("schemas", result):
                register_schemas(bootstrap, registry_url, catalogue)
            with _step("services", result):
                simulator.write_databases(plan, workdir)
                worker = stack.enter_context(processor_worker(as_(topics.CASE_PROCESSOR), registry_url, catalogue,
                                                              workdir))
                stack.enter_context(adapters(bootstrap, registry_url, catalogue, workdir, login))
                secret_file, tls_files = workdir / "portal.secret", write_tls_files(workdir / "portal-tls")
                portal = stack.enter_context(standin_portal(secret_file, tls_files))
                sink = stack.enter_context(issuance_sink(as_(topics.PORTAL), registry_url, catalogue, portal.url,
                                                         secret_file, tls_files["ca"]))
                reader = stack.enter_context(topic_reader(bootstrap, registry_url, catalogue))
                watch = Watch(as_(topics.SRE), catalogue, reader, portal, worker, plan)
                stack.callback(watch.close)
            with _step("publish", result):
                publish_day(bootstrap, registry_url, catalogue, plan, login)
            with _step("process", result):
                settled = watch.until("processing", watch.settled, deadline)
            if settled:  # a tick sent while facts are still in flight could overtake them
                with _step("clock", result):
                    result.ticks = move_clock_past_deadline(as_(topics.CASE_PROCESSOR), registry_url, catalogue,
                                                            watch.open_cases())
                with _step("decide", result):
                    watch.until("deciding", watch.finished, deadline)
            with _step("report", result):
                result.portal_stats, result.portal_ids = portal.stats(), set(portal.issuances())
                result.sink_stats = sink.stats
                result.funnel, result.problems = report(watch, plan)
            with _step("status", result):  # the case store and status API on this run (consumers/casestore)
                from consumers.casestore.demo import status_step

                lines, problems = status_step(as_(topics.CASE_STORE), registry_url, catalogue, result.funnel, workdir)
                console.print(*lines, sep="\n", markup=False)
                result.problems += problems
    finally:
        cleanup(bootstrap, catalogue, workdir, options)
    return result


# --- step 1-2: topics and schemas ---------------------------------------------------------------------------------
def build_catalogue(provinces: str):
    """The catalogue under a fresh prefix, with the chosen provinces' topics only (cases route by residence, and
    every simulated applicant lives in one of them)."""
    codes = set(simulator.parse_provinces(provinces))
    prefix = f"demo-{dt.datetime.now():%Y%m%d%H%M%S}-{uuid.uuid4().hex[:4]}."
    return Catalogue.build(prefix=prefix, input_partitions=DEMO_INPUT_PARTITIONS,
                           provinces=[p for p in load_current_provinces() if p.code in codes])


def create_topics(bootstrap: str | Connection, catalogue, acls: bool = False) -> None:
    """The catalogue's topics, and with `acls` its ACLs (`bootstrap` is then the admin's connection)."""
    done = topology_apply.create_topics(bootstrap, catalogue)
    console.print(f"  {len(done)} topics under prefix [cyan]{catalogue.prefix}[/]")
    if acls:
        admin = topology_apply.connect(bootstrap)
        try:
            topology_acls.apply(topology_acls.plan(catalogue, admin), catalogue, admin)
        finally:
            admin.close()
        console.print(f"  {len(catalogue.acls())} ACLs: each component may touch only its own topics and group")


def register_schemas(bootstrap: str | Connection, registry_url: str, catalogue) -> None:
    """Register every event schema under each topic that carries it, as the operator (`gplx-bus schemas register`):
    the components only look them up."""
    with RegistryClient(registry_url, auth=Connection.of(bootstrap).registry_auth) as client:
        registered = contracts.register(client, catalogue)
    console.print(f"  {len(registered)} subjects registered")


# --- step 4: the services -----------------------------------------------------------------------------------------
@contextmanager
def processor_worker(bootstrap: str, registry_url: str, catalogue, workdir: Path):
    """The faust case processor as a subprocess (as in production); its own timer is slowed to an hour, because
    the demo moves the clock itself once every fact is in."""
    env = {**Connection.of(bootstrap).to_env(), "SCHEMA_REGISTRY_URL": registry_url,
           "GPLX_TOPIC_PREFIX": catalogue.prefix, "GPLX_STORE": DEMO_STORE, "GPLX_DATADIR": str(workdir / "worker"),
           "GPLX_TICK_SECONDS": "3600", "GPLX_INPUT_PARTITIONS": str(DEMO_INPUT_PARTITIONS),
           "GPLX_LOG_LEVEL": "info"}
    worker = ManagedProcess("case-processor", [sys.executable, "-m", "topology.processor"],
                            workdir / "processor.log", env).start()
    console.print(f"  case processor worker (pid {worker.pid}, {DEMO_STORE}, log {worker.log_path})")
    try:
        yield worker
    finally:
        worker.stop(timeout=15)


@contextmanager
def adapters(bootstrap: str, registry_url: str, catalogue, workdir: Path, login=None):
    """The identity, police and payment adapters: one set, or with `login` one per principal (as on a secured
    cluster, where each answers under its own login)."""
    parts = ([("identity", topics.IDENTITY), ("police", topics.POLICE), ("payment", topics.PAYMENT)] if login
             else [(None, None)])
    with ExitStack() as stack:
        sets = []
        for name, principal in parts:
            running = stack.enter_context(AdapterSet(
                login(principal) if login else bootstrap, registry_url, catalogue=catalogue, data_dir=workdir,
                run_identity=name in (None, "identity"), run_police=name in (None, "police"),
                run_payment=name in (None, "payment")))
            console.print(f"  adapters: {', '.join(running.responders)}{f' as {principal}' if principal else ''}")
            sets.append(running)
        yield sets[0] if len(sets) == 1 else RunningAdapters(sets)


class RunningAdapters:
    """Several AdapterSets (one per principal) seen as one: their responders and counters together."""

    def __init__(self, sets: list[AdapterSet]) -> None:
        self.sets = sets
        self.responders = {name: r for s in sets for name, r in s.responders.items()}

    def stats(self) -> dict:
        return {name: stats for s in self.sets for name, stats in s.stats().items()}


@contextmanager
def standin_portal(secret_file: Path, tls_files: dict[str, Path]):
    """The stand-in portal over HTTPS, verifying requests signed with a new secret written (0600) to
    `secret_file`."""
    credentials = write_secret_file(secret_file)
    with StandinPortal(keys={credentials.key_id: credentials.secret}, credentials=credentials,
                       tls=(tls_files["cert"], tls_files["key"])) as portal:
        console.print(f"  stand-in national portal on {portal.url} (verifies HMAC-signed requests, "
                      f"key id {credentials.key_id})")
        yield portal


@contextmanager
def issuance_sink(bootstrap: str, registry_url: str, catalogue, portal_url: str, secret_file: Path, ca_file: Path):
    sink = IssuanceSink(bootstrap, registry_url, portal_url, catalogue=catalogue,
                        credentials=read_secret_file(secret_file),
                        portal_verify=ssl.create_default_context(cafile=str(ca_file))).start()
    console.print(f"  issuance sink -> stand-in portal, verifying it against {ca_file}, signing with the secret "
                  f"in {secret_file}")
    try:
        yield sink
    finally:
        sink.stop()


@contextmanager
def topic_reader(bootstrap: str, registry_url: str, catalogue):
    """Reads what the report needs: applications, case events, issuance and refund requests."""
    names = [catalogue.name(t) for t in (topics.PORTAL_APPLICATIONS, topics.CASES_EVENTS, topics.ISSUANCE_REQUESTS,
                                         topics.PAYMENT_REFUND_REQUESTS)]
    with RegistryClient(registry_url, auth=Connection.of(bootstrap).registry_auth) as registry, \
            TopicReader(bootstrap, registry, names) as reader:
        yield reader


# --- step 5: publish the day ---------------------------------------------------------------------------------------
def publish_day(bootstrap: str, registry_url: str, catalogue, plan, login=None) -> None:
    counts = plan.counts()
    console.print(f"  {len(plan.expected)} applications in {', '.join(plan.provinces)}; planned outcomes: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(counts["outcome"].items())))
    with (PrincipalPublishers(login, registry_url, catalogue, client_id="gplx-demo") if login else
          Publisher(bootstrap, registry_url, catalogue=catalogue, client_id="gplx-demo-simulator")) as publisher, \
            Progress(TextColumn("  publishing"), BarColumn(), MofNCompleteColumn(), console=console,
                     transient=True) as progress:
        task = progress.add_task("events", total=len(plan.events))
        published = simulator.publish(plan, publisher, on_progress=lambda n: progress.update(task, completed=n))
    console.print(f"  published {published.total} events in {published.seconds:.1f}s: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(published.published.items())))


# --- steps 5-7: watching the bus ------------------------------------------------------------------------------------
class Watch:
    """Follows the run through the topics and the consumer groups' offsets; shows it live."""

    def __init__(self, bootstrap: str | Connection, catalogue, reader, portal, worker, plan) -> None:
        self.catalogue, self.reader, self.portal, self.worker, self.plan = catalogue, reader, portal, worker, plan
        # consumer group -> the topics it reads, from the catalogue: the components this run started
        self.in_flight = InFlight(bootstrap, group_topics(catalogue, RUNNING),
                                  extra_topics=[catalogue.name(topics.CASES_EVENTS)])
        self.unreachable: str | None = None  # the error of the last look, while the bus could not answer

    @property
    def lag(self) -> int:
        return self.in_flight.lag

    def close(self) -> None:
        self.in_flight.close()

    def until(self, what: str, condition, deadline: float) -> bool:
        """Show progress until `condition()` holds (live on a terminal, a line every 5 s in a CI log); False if
        the deadline passed first. A dead worker is a DemoError: nothing would ever finish."""
        live = Live(self._view(what), console=console, refresh_per_second=4) if console.is_terminal else None
        last_line = time.monotonic()
        with live or _nothing():
            while not self._holds(condition):
                if time.monotonic() > deadline:
                    break
                if not self.worker.alive():
                    raise DemoError(f"the case processor exited; its log ends: "
                                    f"{self.worker.log_tail(3)[-400:]!r}")
                time.sleep(0.5)  # pacing between looks at the bus
                if live:
                    live.update(self._view(what))
                elif time.monotonic() - last_line >= 5:
                    console.print(self._view(what))
                    last_line = time.monotonic()
            if live:
                live.update(self._view(what))
        if not live:
            console.print(self._view(what))
        if time.monotonic() > deadline:
            console.print(f"[red]  the time limit passed while {what}: reporting what the topics hold now[/]")
            return False
        return True

    def _holds(self, condition) -> bool:
        """`condition()`, or False while the bus cannot answer (a broker or the registry away for a while): the run
        looks again until its deadline, and the progress line names the error meanwhile. (One look can itself take
        up to its read's own limit; a kafka-python client made while a broker is SIGSTOPped can wait until it
        resumes, see the README's open findings.)"""
        from kafka.errors import KafkaError

        try:
            holds = condition()
        except (TransientError, KafkaError) as exc:
            self.unreachable = type(exc).__name__
            return False
        self.unreachable = None
        return holds

    # -- conditions --
    def settled(self) -> bool:
        """Nothing in flight: every group has read every record of its topics, and no topic grew since the last
        look (a processed record's outputs may reach the broker just after its offset was committed)."""
        self.reader.catch_up()
        return self.in_flight.settled()

    def finished(self) -> bool:
        """Every planned application decided, every approval accepted by the portal, and nothing in flight."""
        cases = self.cases()
        planned = {e.application_id for e in self.plan.expected}
        decided = {a for a, c in cases.items() if c["final"]}
        issued = {c["issuance"] for c in cases.values() if c["final"] == "CaseApproved"}
        if not planned <= decided or None in issued or not issued <= set(self.portal.issuances()):
            self.settled()  # keep the lag figure fresh
            return False
        return self.settled()

    def open_cases(self) -> list[tuple[str, dt.datetime]]:
        """(cccd, decision due) of every case without a final decision."""
        return [(c["cccd"], c["due"]) for c in self.cases().values() if not c["final"]]

    # -- what the topics say --
    def cases(self) -> dict[str, dict]:
        """application id -> {cccd, due, final event type, issuance id} from the events read so far."""
        events = self.reader.events
        by_case: dict[str, dict] = {}
        for e in events[self.catalogue.name(topics.CASES_EVENTS)]:
            kind = type(e).__name__
            if kind == "CaseOpened":
                by_case.setdefault(e.case_id, {}).update(app=e.application_id, cccd=e.cccd, due=e.decision_due_at)
            elif kind in _FINAL_EVENTS:
                by_case.setdefault(e.case_id, {})["final"] = kind
        for e in events[self.catalogue.name(topics.ISSUANCE_REQUESTS)]:
            by_case.setdefault(e.case_id, {})["issuance"] = e.issuance_id
        return {c["app"]: {"cccd": c["cccd"], "due": c["due"], "final": c.get("final"),
                           "issuance": c.get("issuance")} for c in by_case.values() if "app" in c}

    def _view(self, what: str) -> Text:
        """One line: how far the run is (counts only, no personal data)."""
        cases = self.cases()
        finals = [c["final"] for c in cases.values() if c["final"]]
        error = self.unreachable or self.in_flight.error
        return Text(f"  {what}: opened {len(cases)}/{len(self.plan.expected)}, decided {len(finals)} "
                    f"(approved {finals.count('CaseApproved')}, rejected {finals.count('CaseRejected')}, "
                    f"escalated {finals.count('CaseEscalated')}), at the portal {self.portal.distinct}, "
                    f"in flight {max(self.lag, 0)}"
                    + (f"; the bus did not answer ({error}), looking again" if error else ""))


# --- step 6: the clock ------------------------------------------------------------------------------------------
def move_clock_past_deadline(bootstrap: str, registry_url: str, catalogue, open_cases) -> int:
    """One ClockTick per open case, an hour past its own decision deadline: the processor then escalates what is
    still missing (DEADLINE_EXCEEDED). Sent only once nothing is in flight, so no tick overtakes a fact."""
    if not open_cases:
        console.print("  no case is waiting: no clock tick needed")
        return 0
    with Publisher(bootstrap, registry_url, catalogue=catalogue, client_id="gplx-demo-clock") as publisher:
        pending = [publisher.send(assembler_tick(cccd, due + dt.timedelta(hours=1))) for cccd, due in open_cases]
        publisher.flush()
        for p in pending:
            p.result()
    latest = max(due for _, due in open_cases) + dt.timedelta(hours=1)
    console.print(f"  {len(open_cases)} cases still waiting: clock moved past their 5-working-day deadline "
                  f"(latest to {latest:%Y-%m-%d %H:%M} UTC)")
    return len(open_cases)


def assembler_tick(cccd: str, at: dt.datetime):
    """The processor's own ClockTick. Imported here, not at the top: the assembler loads the holiday calendars
    (~60 modules), which every `gplx-bus` command would pay for at start-up, since the CLI imports this module."""
    from topology.processor.assembler import tick

    return tick(cccd, at)


# --- step 8: the report -----------------------------------------------------------------------------------------
def report(watch: Watch, plan):
    """The funnel from the topics' contents and the portal's accepted issuances, reconciled with the plan."""
    watch.reader.catch_up()
    events, name = watch.reader.events, watch.catalogue.name
    funnel = compute(events[name(topics.PORTAL_APPLICATIONS)], events[name(topics.CASES_EVENTS)],
                     events[name(topics.ISSUANCE_REQUESTS)], events[name(topics.PAYMENT_REFUND_REQUESTS)],
                     watch.portal.issuances(), portal_received=watch.portal.received)
    console.print(funnel_table(funnel))
    console.print(reasons_table(funnel))
    console.print(f"portal: {funnel.portal_distinct} issuances accepted ({funnel.portal_received} requests "
                  f"received, repeats answered without a second issuance; {watch.portal.unauthorized} refused "
                  f"as not signed by the sink's key)")
    problems = reconcile(funnel, plan.expected)
    if watch.portal.unauthorized:
        problems.append(f"the portal refused {watch.portal.unauthorized} request(s) as unauthenticated: "
                        f"{watch.portal.unauthorized_reasons()}")
    if funnel.undecided():
        console.print(f"[red]{len(funnel.undecided())} application(s) without a final decision[/]")
    if problems:
        console.print(f"[red]{len(problems)} difference(s) between the topics and the simulator's plan:[/]")
        for line in problems[:30]:
            console.print(f"  {line}")
        if len(problems) > 30:
            console.print(f"  ... and {len(problems) - 30} more")
    else:
        console.print(f"[green]reconciled:[/] all {len(plan.expected)} applications decided as planned; every "
                      "approval delivered once, every paid rejection and overpayment refunded once")
    return funnel, problems


# --- cleanup ------------------------------------------------------------------------------------------------------
def cleanup(bootstrap: str, catalogue, workdir: Path, options: DemoOptions) -> None:
    """Delete the run's topics and groups on a shared cluster, and the work folder, unless --keep."""
    if options.keep:
        console.print(f"kept: topics under [cyan]{catalogue.prefix}[/], work folder {workdir}")
        return
    shutil.rmtree(workdir, ignore_errors=True)
    if options.delete_topics:
        delete_run_topics(bootstrap, catalogue.prefix)


def delete_run_topics(bootstrap: str | Connection, prefix: str) -> None:
    try:
        deleted = topology_apply.delete_under_prefix(bootstrap, prefix)
        console.print(f"deleted the run's {len(deleted)} topics under {prefix}")
    except topology_apply.TopologyError as exc:
        console.print(f"[yellow]could not delete the run's topics under {prefix}: {exc}[/]")


# --- helpers --------------------------------------------------------------------------------------------------------
_STEP_TITLES = {
    "topics": "1/8 creating the topics",
    "schemas": "2/8 registering the schemas",
    "services": "3/8 starting the case processor, adapters, stand-in portal and issuance sink",
    "publish": "4/8 publishing the simulated day",
    "process": "5/8 waiting until every fact is processed (no consumer lag, nothing in flight)",
    "clock": "6/8 moving the clock past the deadline",
    "decide": "7/8 waiting for every decision and every delivery at the portal",
    "report": "8/8 the funnel, from the topics",
    "status": "+ the case store and status API: three cases asked over HTTP",
}


@contextmanager
def _nothing():
    yield


@contextmanager
def _step(key: str, result: DemoResult):
    """Print the step's title, time it, and record the time in the result."""
    console.print(f"[bold]{_STEP_TITLES[key]}[/]")
    started = time.monotonic()
    yield
    result.seconds[key] = round(time.monotonic() - started, 1)
    console.print(f"  [green]done[/] in {result.seconds[key]}s")


def _quiet_libraries() -> None:
    """Keep the console for the report: library chatter (kafka-python reconnects) only on errors."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # the broker's start-up is polled: refusals are expected
