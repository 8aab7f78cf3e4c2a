"""The demo's last step: the case store and the status API on the demo's own run.

Materializes the run's `cases.events` into an SQLite file in the run's folder until caught up, checks that every
case the processor decided has a row with the same state and reasons, serves the API on a free loopback port
and asks it, as a helpdesk would, for three cases: one approved, one rejected, one still missing a health
certificate (escalated past its deadline with EXAM_MISSING, or still waiting for it). Returns the printable
answers and the differences found (none, when all is well).
"""
from __future__ import annotations

import time
from pathlib import Path

import httpx

from consumers.casestore.api import render
from consumers.casestore.auth import Keys, add_key
from consumers.casestore.consumer import StoreConsumer
from consumers.casestore.db import database
from consumers.casestore.server import ApiServer
from consumers.casestore.store import CaseStore
from schemas.registry import RegistryClient
from topology.catalogue import CASES_EVENTS
from topology.connection import Connection


def catch_up(consumer: StoreConsumer, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while consumer.lag() > 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the case store did not catch up on {consumer.topic} within {timeout_s:.0f}s")
        consumer.step(timeout_ms=300)


def compare(store: CaseStore, funnel) -> list[str]:
    """Every decided case of the funnel has a row with the same state and reasons (one line per difference)."""
    problems = []
    for app_id, case in sorted(funnel.cases.items()):
        if case.outcome is None:
            continue
        row = store.by_application(app_id)
        if row is None:
            problems.append(f"{app_id}: decided {case.outcome} but no row in the case store")
        elif row.state != case.outcome or set(row.reasons) != set(case.reasons):
            problems.append(f"{app_id}: case store says {row.state} {row.reasons}, the topic "
                            f"{case.outcome} {sorted(case.reasons)}")
    return problems


def pick_three(funnel) -> list[tuple[str, str]]:
    """(label, application id): the first approved, rejected and certificate-missing case, where there is one."""
    cases = sorted(funnel.cases.items())
    wanted = [("approved", lambda c: c.outcome == "APPROVED"),
              ("rejected", lambda c: c.outcome == "REJECTED"),
              ("still missing a health certificate", lambda c: "EXAM_MISSING" in c.reasons)]
    return [(label, next((a for a, c in cases if test(c)), None)) for label, test in wanted]


def status_step(bootstrap: str | Connection, registry_url: str, catalogue, funnel, workdir: Path,
                timeout_s: float = 60.0, *, database_url: str | None = None) -> tuple[list[str], list[str]]:
    """Store + API on the demo's run (SQLite in the run's folder unless `database_url` names an empty
    database); returns (printable lines, problems)."""
    conn = Connection.of(bootstrap)
    db = database(database_url or f"sqlite:///{workdir / 'cases.db'}")
    topic = catalogue.name(CASES_EVENTS)
    store = CaseStore(db, topic)
    consumer = StoreConsumer(conn, RegistryClient(registry_url, auth=conn.registry_auth), store)
    started = time.monotonic()
    try:
        catch_up(consumer, timeout_s)
        problems = compare(store, funnel)
        rows = store.count()
    finally:
        consumer.close()
        store.close()
    lines = [f"case store ({db.dialect}): {rows} cases from {consumer.totals.applied} events in "
             f"{time.monotonic() - started:.1f}s; "
             + ("every decided case has a row with the same state and reasons" if not problems
                else f"{len(problems)} difference(s) with the topic")]
    key = add_key(workdir / "status-keys.json", "helpdesk")
    server = ApiServer(db, catalogue.prefix, Keys.load(workdir / "status-keys.json")).start()
    try:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as http:
            for label, app_id in pick_three(funnel):
                if app_id is None:
                    problems.append(f"no {label} case in this run to ask the status API about")
                    continue
                answer = http.get(f"/v1/applications/{app_id}")
                if answer.status_code != 200:
                    problems.append(f"status API: GET /v1/applications/{app_id}: HTTP {answer.status_code}")
                    continue
                lines += [f"GET {server.url}/v1/applications/{app_id}  ({label})", render(answer.json())]
            live = http.get("/v1/funnel").json()
            want = funnel.outcomes()
            if live["outcomes"].get("APPROVED", 0) != want.get("APPROVED", 0):
                problems.append(f"status API funnel: {live['outcomes']} approved, the topics {dict(want)}")
            lines.append("GET /v1/funnel: " + ", ".join(f"{k} {v}" for k, v in live["stages"].items()))
    finally:
        server.stop()
    return lines, problems
