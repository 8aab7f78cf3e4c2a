"""The demo end to end on the session's real broker: a simulated day through the whole bus, then the topics are
read back and checked against the plan and against the funnel the demo printed.

What must hold:
- every simulated application ends approved, rejected or escalated, with exactly one decision;
- the portal got every approval exactly once: distinct issuance ids == approvals == the stand-in's distinct
  issuances, and the stand-in never counted a repeat as a new issuance;
- refunds == the rejected cases whose fee was paid plus the approved ones that paid too much, one refund each;
- the funnel's counts equal what the topics hold;
- no component's log (the worker's log file at info, every Python logger at INFO, the console, stderr) holds a
  CCCD, full name, phone or licence number the simulator published, nor health details; the run's files with
  personal data are 0600.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import shutil
import stat
from collections import Counter, defaultdict
from dataclasses import dataclass

import pytest

from gplx_bus.commands import demo as demo_command
from gplx_bus.commands.demo import DemoOptions, run_demo
from producers.testing import read_to_end
from schemas import reference
from schemas.registry import RegistryClient
from topology import catalogue as topics
from topology.processor.outputs import case_id_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]
FINAL = ("CaseApproved", "CaseRejected", "CaseEscalated")


def read_all(bootstrap: str, registry_url: str, topic: str) -> list:
    """Every event of a topic, from the beginning to its current end."""
    with RegistryClient(registry_url) as registry:
        return [event for _, event in read_to_end(bootstrap, registry, topic)]


@dataclass
class Logs:
    """Everything the run's components wrote: Python logging of the in-process ones (adapters, sink, stand-in
    portal, simulator, demo), the console and stderr, and the worker's log file."""

    in_process: str = ""
    console: str = ""
    stderr: str = ""
    worker: str = ""

    def all(self) -> str:
        return "\n".join((self.in_process, self.console, self.stderr, self.worker))


@contextlib.contextmanager
def captured_logs(logs: Logs):
    """Every logger at INFO into one buffer (as an operator running the services at INFO would see them), the
    demo's console and stderr into others; put back as they were afterwards."""
    buffer, stderr = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        with demo_command.console.capture() as console, contextlib.redirect_stderr(stderr):
            yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        logs.in_process, logs.console, logs.stderr = buffer.getvalue(), console.get(), stderr.getvalue()


@pytest.fixture(scope="module")
def demo(kafka_bootstrap, schema_registry_url):
    """One demo run with 60 applications; its topics stay on the cluster for the checks below, its run folder
    (kept for the log and file checks) is deleted after them."""
    # seed 2: every failure mode of issue 10 is in the 60 (underpaid, overpaid, old province code, old class,
    # name differs), besides the pilot's
    logs = Logs()
    with captured_logs(logs):
        result = run_demo(DemoOptions(provinces="01,79,48", applications=60, seed=2, timeout_s=180,
                                      delete_topics=False, keep=True), kafka_bootstrap, schema_registry_url)
    result.logs = logs
    logs.worker = (result.workdir / "processor.log").read_text(encoding="utf-8", errors="replace")

    def topic(base: str) -> list:
        return read_all(kafka_bootstrap, schema_registry_url, result.catalogue.name(base))

    yield result, topic
    shutil.rmtree(result.workdir, ignore_errors=True)


def finals_by_case(case_events) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = defaultdict(dict)
    for e in case_events:
        if type(e).__name__ in FINAL:
            out[e.case_id][e.event_id] = e  # a re-delivery has the same id
    return out


def test_every_application_ends_with_exactly_one_final_decision(demo):
    result, topic = demo
    finals = finals_by_case(topic(topics.CASES_EVENTS))
    for expected in result.plan.expected:
        decisions = finals.get(case_id_for(expected.application_id), {})
        assert len(decisions) == 1, f"{expected.application_id}: {len(decisions)} final decisions"
    assert len(finals) == len(result.plan.expected) == 60
    assert result.problems == [] and result.ok
    assert result.ticks == sum(e.outcome == "AWAITING" for e in result.plan.expected) > 0


def test_each_approval_is_issued_once_and_delivered_once_at_the_portal(demo):
    result, topic = demo
    finals = finals_by_case(topic(topics.CASES_EVENTS))
    approved = {case for case, d in finals.items() if type(next(iter(d.values()))).__name__ == "CaseApproved"}
    issuances = topic(topics.ISSUANCE_REQUESTS)
    ids_per_case = defaultdict(set)
    for i in issuances:
        ids_per_case[i.case_id].add(i.issuance_id)
    assert set(ids_per_case) == approved
    assert all(len(ids) == 1 for ids in ids_per_case.values()), "a case was issued under two ids"
    issued = {i.issuance_id for i in issuances}
    assert len(issued) == len(approved) > 0
    assert result.portal_ids == issued
    assert result.portal_stats["distinct"] == len(approved)  # repeats (if any) were not new issuances
    assert result.portal_stats["received"] >= result.portal_stats["distinct"]
    assert result.sink_stats.dead_lettered == 0 and not result.sink_stats.errors


def test_refunds_are_exactly_the_paid_rejections_and_the_overpayments(demo):
    result, topic = demo
    finals = finals_by_case(topic(topics.CASES_EVENTS))
    decided = {case: next(iter(d.values())) for case, d in finals.items()}
    rejected = {case for case, e in decided.items() if type(e).__name__ == "CaseRejected"}
    overpaid = {case for case, e in decided.items() if "OVERPAID" in (getattr(e, "warnings", None) or ())}
    paid = {case_id_for(t.application_id): t.amount_vnd for t in topic(topics.PAYMENT_TRANSACTIONS)
            if t.status == "PAID"}
    refunds = defaultdict(dict)
    for r in topic(topics.PAYMENT_REFUND_REQUESTS):
        refunds[r.case_id][r.refund_id] = r.amount_vnd
    assert set(refunds) == (rejected & set(paid)) | overpaid
    assert overpaid == {case_id_for(e.application_id) for e in result.plan.expected if e.failure == "overpaid"}
    assert all(len(ids) == 1 for ids in refunds.values())
    for case in overpaid:  # the excess only: the fee quoted stays paid
        assert list(refunds[case].values()) == [paid[case] - 135_000]
    assert len(refunds) == sum(e.refund_expected for e in result.plan.expected)


def test_the_funnel_counts_are_what_the_topics_hold(demo):
    result, topic = demo
    funnel = result.funnel
    case_events = topic(topics.CASES_EVENTS)
    finals = [next(iter(d.values())) for d in finals_by_case(case_events).values()]
    outcome = {"CaseApproved": "APPROVED", "CaseRejected": "REJECTED", "CaseEscalated": "ESCALATED"}
    assert funnel.outcomes() == Counter(outcome[type(e).__name__] for e in finals)
    applications = topic(topics.PORTAL_APPLICATIONS)
    stages = funnel.stage_counts()
    assert stages["applications"] == len({a.application_id for a in applications}) == 60
    assert stages["approved"] == stages["delivered"] == funnel.outcomes()["APPROVED"] == len(result.portal_ids)
    for wanted in ("REJECTED", "ESCALATED"):
        assert funnel.reasons(wanted) == Counter(
            r for e in finals if outcome[type(e).__name__] == wanted for r in e.reasons)
    assert funnel.refunds() == len({r.case_id for r in topic(topics.PAYMENT_REFUND_REQUESTS)})
    by_province = Counter(reference.current_code_of(a.residence_province) for a in applications)  # old codes routed
    modes = Counter(e.failure for e in result.plan.expected)
    assert modes["old_class"] and modes["old_province_code"] and modes["underpaid"] and modes["overpaid"]
    assert funnel.old_codes() == sum(not reference.is_current_province_code(a.residence_province)
                                     for a in applications) > 0
    assert funnel.exchanged() == sum(
        1 for e in finals if type(e).__name__ == "CaseApproved" and set(e.new_classes) != set(e.classes)) \
        >= modes["old_class"]  # every old A2 / old B1 was exchanged (some planned B2, A1 ... are too)
    assert funnel.warnings()["OVERPAID"] == modes["overpaid"]
    assert {p: funnel.stage_counts(p)["applications"] for p in funnel.provinces()} == by_province
    # the stages only ever narrow
    counts = list(stages.values())
    assert counts == sorted(counts, reverse=True)


def personal_data(plan) -> tuple[set[str], set[str]]:
    """(numbers, texts) the simulator published about its citizens: CCCDs, phones and licence numbers; full names
    and doctors' names, each also as Python and JSON would escape it."""
    numbers, names = set(), set()
    for record in plan.identity_records:
        numbers.add(record["cccd"])
        numbers.update(record.get("phones") or ())
        names.add(record["full_name"])
    for record in plan.police_records:
        numbers.add(record["licence_number"])
    for scheduled in plan.events:
        event = scheduled.event
        numbers.add(event.cccd)
        for field_name in ("phone", "licence_number"):
            if getattr(event, field_name, None):
                numbers.add(getattr(event, field_name))
        for field_name in ("full_name", "doctor"):
            if getattr(event, field_name, None):
                names.add(getattr(event, field_name))
    texts = names | {json.dumps(n)[1:-1] for n in names} | {ascii(n)[1:-1] for n in names}
    return numbers, texts


#: How health details would look in a log line (field names of the certificate; a verdict printed from the model).
HEALTH_MARKERS = ("health_group", "conclusions", "fit=True", "fit=False", "'fit':", '"fit":')


def test_no_log_line_of_any_component_holds_personal_data(demo):
    result, _ = demo
    logs = result.logs
    # the capture really caught the components at INFO (else "no hit" would prove nothing)
    assert "adapter consuming" in logs.in_process and "database" in logs.in_process
    assert "portal sink:" in logs.in_process and "stand-in portal accepted issuance" in logs.in_process
    assert "INFO" in logs.worker and "reconciled" in logs.console
    numbers, texts = personal_data(result.plan)
    assert len(numbers) > 180 and len(texts) > 60
    for where, text in vars(logs).items():
        digit_runs = set(re.findall(r"\d+", text))
        assert not numbers & digit_runs, f"{where} log: {sorted(numbers & digit_runs)[:5]}"
        named = [t for t in texts if t in text]
        assert not named, f"{where} log names {named[:5]}"
        health = [m for m in HEALTH_MARKERS if m in text]
        assert not health, f"{where} log shows health details: {health}"


def test_the_run_folders_files_with_personal_data_are_0600(demo):
    result, _ = demo
    workdir = result.workdir
    assert stat.S_IMODE(workdir.stat().st_mode) == 0o700
    private = [workdir / name for name in ("identity.jsonl", "police.jsonl", "payments.jsonl",
                                           "cases.db", "status-keys.json")]  # the case store and its API keys
    private += sorted(workdir.glob("cases.db-*"))  # SQLite's WAL and shared-memory files
    for path in private:
        assert path.stat().st_size > 0 and stat.S_IMODE(path.stat().st_mode) == 0o600, path
