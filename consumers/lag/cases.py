"""The pipeline's own signals, from the audit stream `cases.events`: cases by state, decisions by reason code.
Pure: `CaseBook.apply(avro_name, record)` takes decoded events, so tests feed it hand-made ones and no broker.

Why a gauge of cases by their current state (case_id -> state in memory) rather than a counter of events by type:
the processor is at-least-once and re-sends an output with the *same* event id after a crash (README: 101
re-deliveries for 400 cases in the SIGKILL test). A counter of records would count those, about a quarter too many
in that test. Keyed by case, a re-delivery changes nothing, the state survives reading the stream in any
partition interleaving, and both "how many cases are awaiting documents now" and "how many were rejected for UNFIT"
come out exact.

Memory is bounded by the cases that can still change, not by history: a case keeps its entry while it is open,
and for `horizon_s` (default 7 days, by record time) after its decision, which covers the re-deliveries of a
crashed worker (minutes) and the portal sink's IssuanceDeliveryFailed (hours); then the entry goes and only the
counters remember it. An entry is ~150 bytes (a 16-byte UUID key and a shared tuple): a national year (~5 M
cases, ~100,000 decided a week, tens of thousands open) needs ~20 MB instead of ~750 MB. An event for a case
whose entry has gone counts as a new case: only a re-delivery more than a week late does that.
`dump()`/`CaseBook.restore()` carry the entries and totals to a snapshot file (consumers/lag/cases_reader.py),
so the exporter starts from its last snapshot instead of the beginning of the topic.

States, in the order a case moves through them; a lower-ranked event arriving late (a re-delivered CaseOpened after
the decision) never moves a case back:

    OPENED (CaseOpened) < AWAITING (CaseAwaiting) < APPROVED | REJECTED | ESCALATED < DELIVERY_FAILED

Decisions are counted once per (case, outcome) and under each of the decision's reasons (ReasonCode symbols, a
bounded enum; approvals carry no reasons and count under reason="none"), so `gplx_decisions_total` grows only and
`sum by (outcome)` over it counts a two-reason rejection twice; `gplx_decided_cases_total{outcome}` counts cases.
"""
from __future__ import annotations

import uuid
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

NS = "vn.gplx.cases."
STATE_OF_EVENT = {
    NS + "CaseOpened": "OPENED",
    NS + "CaseAwaiting": "AWAITING",
    NS + "CaseApproved": "APPROVED",
    NS + "CaseRejected": "REJECTED",
    NS + "CaseEscalated": "ESCALATED",
    NS + "IssuanceDeliveryFailed": "DELIVERY_FAILED",
}
STATES = ("OPENED", "AWAITING", "APPROVED", "REJECTED", "ESCALATED", "DELIVERY_FAILED")
_RANK = {"OPENED": 0, "AWAITING": 1, "APPROVED": 2, "REJECTED": 2, "ESCALATED": 2, "DELIVERY_FAILED": 3}
OUTCOMES = ("APPROVED", "REJECTED", "ESCALATED")
NO_REASON = "none"
# What `apply` says about one record (also the `result` label of gplx_case_events_read_total).
COUNTED, DUPLICATE, IGNORED, UNDECODABLE = "counted", "duplicate", "ignored", "undecodable"
RESULTS = (COUNTED, DUPLICATE, IGNORED, UNDECODABLE)


@dataclass
class BookTotals:
    """A consistent copy of the book's numbers, taken under the reader's lock and rendered without it."""

    states: Counter = field(default_factory=Counter)
    decided: Counter = field(default_factory=Counter)  # outcome -> cases
    decisions: Counter = field(default_factory=Counter)  # (outcome, reason) -> cases
    records: Counter = field(default_factory=Counter)  # result -> records


class CaseBook:
    """Latest state and decided outcomes per case, with the totals kept up to date on every change."""

    #: How long a decided case keeps its entry (record time), see the module docstring.
    DEFAULT_HORIZON_S = 7 * 24 * 3600

    def __init__(self, *, horizon_s: float = DEFAULT_HORIZON_S) -> None:
        self._cases: dict[bytes | str, tuple[str, frozenset[str]]] = {}  # case -> (state, outcomes counted)
        self._shared: dict[tuple[str, frozenset[str]], tuple[str, frozenset[str]]] = {}  # one tuple per value
        self._final: deque[tuple[int, bytes | str]] = deque()  # (record ms, case) in decision order: to forget
        self._horizon_ms = int(horizon_s * 1000)
        self.totals = BookTotals()

    def __len__(self) -> int:
        return len(self._cases)

    def apply(self, avro_name: str, record: dict, timestamp_ms: int | None = None) -> str:
        """Take one decoded event; returns COUNTED if it changed something, DUPLICATE if not, IGNORED if it is no
        case event (another type on the topic, or no case id). `timestamp_ms` (the record's time) lets the book
        forget decided cases past the horizon; without it nothing is forgotten."""
        state = STATE_OF_EVENT.get(avro_name)
        case_id = record.get("case_id") if isinstance(record, dict) else None
        if state is None or not case_id:
            return self._count(IGNORED)
        key = _compact(case_id)
        old_state, outcomes = self._cases.get(key, (None, frozenset()))
        new_state = state if old_state is None or _RANK[state] >= _RANK[old_state] else old_state
        changed = new_state != old_state
        if changed:
            if old_state is not None:
                self.totals.states[old_state] -= 1
            self.totals.states[new_state] += 1
        if state in OUTCOMES and state not in outcomes:
            outcomes = outcomes | {state}
            self.totals.decided[state] += 1
            for reason in _reasons(state, record):
                self.totals.decisions[(state, reason)] += 1
            changed = True
        if timestamp_ms is not None:
            if changed and _RANK[new_state] >= _FINAL and (old_state is None or _RANK[old_state] < _FINAL):
                self._final.append((timestamp_ms, key))
            self._forget_before(timestamp_ms - self._horizon_ms)
        if not changed:
            return self._count(DUPLICATE)
        value = (new_state, outcomes)
        self._cases[key] = self._shared.setdefault(value, value)
        return self._count(COUNTED)

    def undecodable(self) -> None:
        self._count(UNDECODABLE)

    def snapshot(self) -> BookTotals:
        t = self.totals
        return BookTotals(Counter(t.states), Counter(t.decided), Counter(t.decisions), Counter(t.records))

    # -- persistence: plain JSON-able data, so the snapshot file is readable and versioned -----------------------
    def dump(self) -> dict:
        final = {key for _, key in self._final}
        return {
            "version": 1,
            "horizon_s": self._horizon_ms / 1000,
            "totals": {
                "states": dict(self.totals.states), "decided": dict(self.totals.decided),
                "decisions": [[o, r, n] for (o, r), n in sorted(self.totals.decisions.items())],
                "records": dict(self.totals.records),
            },
            # open cases, then the decided ones in decision order with their record time
            "open": [[_text(k), st, sorted(oc)] for k, (st, oc) in self._cases.items() if k not in final],
            "final": [[ts, _text(k), *self._entry(k)] for ts, k in self._final if k in self._cases],
        }

    @classmethod
    def restore(cls, data: dict) -> "CaseBook":
        if data.get("version") != 1:
            raise ValueError(f"unknown case book snapshot version {data.get('version')!r}")
        book = cls(horizon_s=float(data["horizon_s"]))
        t = data["totals"]
        book.totals = BookTotals(Counter(t["states"]), Counter(t["decided"]),
                                 Counter({(o, r): n for o, r, n in t["decisions"]}), Counter(t["records"]))
        for case, state, outcomes in data["open"]:
            book._put(_compact(case), state, outcomes)
        for ts, case, state, outcomes in data["final"]:
            key = _compact(case)
            book._put(key, state, outcomes)
            book._final.append((ts, key))
        return book

    def _entry(self, key: bytes | str) -> tuple[str, list[str]]:
        state, outcomes = self._cases[key]
        return state, sorted(outcomes)

    def _put(self, key: bytes | str, state: str, outcomes: Iterable[str]) -> None:
        value = (state, frozenset(outcomes))
        self._cases[key] = self._shared.setdefault(value, value)

    def _forget_before(self, cutoff_ms: int) -> None:
        while self._final and self._final[0][0] < cutoff_ms:
            _, key = self._final.popleft()
            self._cases.pop(key, None)

    def _count(self, result: str) -> str:
        self.totals.records[result] += 1
        return result


_FINAL = 2  # the rank of a decision: the case changes no more but for a delivery failure and re-deliveries


def _text(key: bytes | str) -> str:
    return str(uuid.UUID(bytes=key)) if isinstance(key, bytes) else key


def _compact(case_id: str) -> bytes | str:
    """Case ids are UUIDs (topology.processor.outputs.case_id_for): 16 bytes instead of a 36-character string."""
    try:
        return uuid.UUID(case_id).bytes
    except (ValueError, AttributeError, TypeError):
        return case_id


def _reasons(outcome: str, record: dict) -> Iterable[str]:
    if outcome == "APPROVED":  # an approval's `warnings` did not decide anything
        return (NO_REASON,)
    reasons = sorted({str(r) for r in record.get("reasons") or ()})
    return reasons or (NO_REASON,)


def book_metrics(totals: BookTotals, reader_lag: int | None = None) -> Iterable:
    """Metric families of the book. Every state, outcome and result is always present (0 when none), so a series
    does not appear out of nowhere the first time a case is, say, escalated; the reason label set is bounded by the
    ReasonCode enum."""
    cases = GaugeMetricFamily("gplx_cases", "Cases by current state (from cases.events, one per case).",
                              labels=["state"])
    for s in STATES:
        cases.add_metric([s], float(totals.states[s]))
    yield cases
    decided = CounterMetricFamily("gplx_decided_cases", "Cases decided, by outcome (once per case and outcome).",
                                  labels=["outcome"])
    for o in OUTCOMES:
        decided.add_metric([o], float(totals.decided[o]))
    yield decided
    decisions = CounterMetricFamily(
        "gplx_decisions", "Decisions by outcome and ReasonCode (a case with two reasons counts under both; "
        "approvals under reason=none).", labels=["outcome", "reason"])
    for (outcome, reason), n in sorted(totals.decisions.items()):
        decisions.add_metric([outcome, reason], float(n))
    yield decisions
    records = CounterMetricFamily("gplx_case_events_read", "Records of cases.events read, by what they did to "
                                  "the counts.", labels=["result"])
    for r in RESULTS:
        records.add_metric([r], float(totals.records[r]))
    yield records
    if reader_lag is not None:
        yield GaugeMetricFamily("gplx_cases_reader_lag_messages", "Records of cases.events not read yet.",
                                value=float(reader_lag))
