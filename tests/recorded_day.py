"""A seeded simulated day through the case processor's pure core, recorded: what the assembler emits, byte for byte.

Why: refactoring the citizen state (issue 13) must not change a single output. `run_day()` feeds the simulator's
day (applications, certificates, payments), the identity and police adapters' answers (their own pure `answer`
functions on the simulator's databases, arriving after a delay drawn from the case id: minutes for most, days for
some so that notices and deadlines fire), clock ticks, duplicates and replays into `assembler.handle`, in a fixed
order, and returns every output as one canonical JSON line.

`tests/data/recorded-day/outputs.jsonl.gz` holds the lines recorded by the code *before* the refactor (commit
noted in tests/data/recorded-day/README.md); `test_recorded_day.py` compares. Never regenerate it to make a
refactor pass: a difference there is a changed output. Regenerate only for an intended behaviour change:
`.venv/bin/python -m tests.recorded_day --write`.
"""
from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import heapq
import json
import sys
from pathlib import Path

from producers import simulator
from tests.case_scenarios import scripts
from producers.adapters import identity, police
from topology import catalogue as topics
from topology.processor import assembler, citizen
from topology.rules import load_rule_set

DATA = Path(__file__).parent / "data" / "recorded-day"
OUTPUTS = DATA / "outputs.jsonl.gz"
STATES = DATA / "citizen-states.json"
START = dt.datetime(2025, 9, 3, 3, 0, tzinfo=dt.timezone.utc)  # a Wednesday, 10:00 in Hà Nội
SEED, APPLICATIONS, PROVINCES = 20251130, 160, "01,79,48"


def _draw(text: str) -> int:
    """0-99, fixed by the text (not by Python's salted hash)."""
    return int(hashlib.sha256(text.encode()).hexdigest(), 16) % 100


def _answer_delay(case_id: str, kind: str) -> dt.timedelta:
    draw = _draw(f"{case_id}/{kind}")
    if draw < 80:
        return dt.timedelta(minutes=1 + draw)
    if draw < 92:
        return dt.timedelta(days=4)  # after the 2-working-day notice (ticked on day 3), before the deadline
    return dt.timedelta(days=12)  # after the 5-working-day deadline: the case escalates without it


def output_line(output) -> str:
    event = output.event
    return json.dumps({"kind": output.kind, "topics": list(output.topics), "key": output.key,
                       "type": event.avro_name, "event": event.model_dump(mode="json")},
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def run_day(snapshots: bool = False) -> tuple[list[str], dict[str, dict]]:
    """(output lines in order, {label: a citizen's state as JSON at an interesting moment} if `snapshots`).
    Each state goes through JSON text between two inputs, as through the worker's table."""
    rules = load_rule_set()
    plan = simulator.make_plan(PROVINCES, APPLICATIONS, SEED, start=START)
    identity_db = {r["cccd"]: r for r in plan.identity_records}
    police_db = {r["cccd"]: r for r in plan.police_records}
    queue: list[tuple[dt.datetime, int, str, object]] = []  # (when, sequence, topic, event)
    sequence = 0

    def push(when, topic, event):
        nonlocal sequence
        sequence += 1
        heapq.heappush(queue, (when, sequence, topic, event))

    topic_of = {"ApplicationSubmitted": topics.PORTAL_APPLICATIONS, "HealthCertificate": topics.HEALTH_EXAM_RESULTS,
                "PaymentTransaction": topics.PAYMENT_TRANSACTIONS}
    for scheduled in plan.events:
        push(scheduled.at, topic_of[type(scheduled.event).__name__], scheduled.event)
    # The scripted cases (one per outcome and reason), facts in reverse: payments and answers before their
    # application, a withdrawal: states the simulator's day does not reach.
    for script in scripts():
        for topic, event in reversed(script.events()):
            push(START - dt.timedelta(days=60), topic, event)  # one moment: read in the order pushed
    cccds = sorted({s.event.cccd for s in plan.events} | {s.cccd for s in scripts()})
    for cccd in cccds:  # the worker's timer, as it would tick a waiting case
        for days in (3, 8, 15):
            at = START + dt.timedelta(days=days)
            push(at, topics.CASES_CLOCK, assembler.tick(cccd, at))

    stored: dict[str, str] = {}  # cccd -> the state as the changelog carries it
    offsets: dict[str, int] = {}
    lines: list[str] = []
    kept: dict[str, dict] = {}
    while queue:
        when, _, topic, event = heapq.heappop(queue)
        offsets[topic] = offsets.get(topic, -1) + 1
        offset = offsets[topic]
        step = assembler.handle(_load(stored.get(event.cccd)), event, topic, offset, rules)
        draw = _draw(f"{event.event_id}/again")
        if draw < 4:  # a crash before the commit: the same record read again
            step.outputs += assembler.handle(step.state, event, topic, offset, rules).outputs
        elif draw < 8:  # the producer retried: the same event at a new offset
            offsets[topic] += 1
            step.outputs += assembler.handle(step.state, event, topic, offsets[topic], rules).outputs
        for output in step.outputs:
            lines.append(output_line(output))
            request = output.event
            if output.kind == "identity-request":
                at = request.occurred_at + _answer_delay(request.case_id, output.kind)
                push(at, topics.IDENTITY_RESULTS, identity.answer(request, identity_db, now=at))
            elif output.kind == "licence-request":
                at = request.occurred_at + _answer_delay(request.case_id, output.kind)
                push(at, topics.POLICE_LICENCE_STATUS, police.answer(request, police_db, now=at))
        stored[event.cccd] = json.dumps(citizen.to_json(step.state), ensure_ascii=False)
        if snapshots:
            _snapshot(kept, event.cccd, json.loads(stored[event.cccd]))
    return lines, kept


def _load(text: str | None):
    return None if text is None else citizen.from_json(json.loads(text))


def probe(cccd: str, state_json: dict) -> dict[str, list[str]]:
    """What a stored state does next, as output lines: every applied input read again (a replay after a crash),
    a payment for its application arriving late, the clock moved a month on. Each from a fresh copy of the JSON."""
    from producers.adapters.payment import payment_transaction

    rules = load_rule_set()
    later = START + dt.timedelta(days=40)

    def outputs(item, topic, offset):
        state = citizen.from_json(json.loads(json.dumps(state_json)))
        return [output_line(o) for o in assembler.handle(state, item, topic, offset, rules).outputs]

    applied = sorted(state_json["applied"].items())
    probes = {"replay": [line for topic, offset in applied for line in outputs(assembler.tick(cccd, later), topic,
                                                                                 offset)],
              "month-later": outputs(assembler.tick(cccd, later), topics.CASES_CLOCK, 10**9)}
    case = state_json["case"]
    if case is not None:
        late = payment_transaction(application_id=case["application"]["application_id"], cccd=cccd,
                                   amount_vnd=135_000, occurred_at=later)
        probes["late-payment"] = outputs(late, topics.PAYMENT_TRANSACTIONS, 10**9)
    return probes


def _snapshot(snapshots: dict[str, dict], cccd: str, state: dict) -> None:
    """Keep the first state seen of each kind worth loading back (as JSON: what the changelog holds), with what
    it does next (`probe`)."""
    case = state["case"]
    labels = []
    if case is None and state["certificates"]:
        labels.append("certificate-before-application")
    if case is not None:
        if case["status"] == "OPEN" and case["missing"]:
            labels.append("open-case-missing-facts")
        if case["status"] == "AWAITING" and not case["final"]:
            labels.append("awaiting-after-notice")
        if case["final"]:
            labels.append(f"decided-{case['status'].lower()}")
        if case["refunds"]:
            labels.append(f"refunded-{case['status'].lower()}")
        if case["withdrawn"]:
            labels.append("withdrawn")
        if state["closed"] and not case["final"]:
            labels.append("second-application")
        if case.get("notified") not in (None, case["missing"]):  # a fact arrived after the notice
            labels.append("fact-after-notice")
    if any(c["revoked"] for c in state["certificates"].values()):
        labels.append("revoked-certificate")
    if state["early_payments"]:
        labels.append("early-payment")
    if state["early_answers"]:
        labels.append("early-answer")
    for label in labels:
        if label not in snapshots:
            snapshots[label] = {"cccd": cccd, "state": state, "next": probe(cccd, state)}


def write() -> None:
    lines, snapshots = run_day(snapshots=True)
    DATA.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(OUTPUTS, "wb", mtime=0) as out:  # mtime 0: the same lines give the same file
        out.write("".join(line + "\n" for line in lines).encode())
    # key order kept: it is the order of the changelog's JSON, and a replay re-sends outputs in that order
    STATES.write_text(json.dumps(snapshots, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(lines)} outputs -> {OUTPUTS}; {len(snapshots)} states -> {STATES}: {sorted(snapshots)}")


def recorded_lines() -> list[str]:
    with gzip.open(OUTPUTS, "rt", encoding="utf-8") as stored:
        return stored.read().splitlines()


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(__doc__)
    write()
