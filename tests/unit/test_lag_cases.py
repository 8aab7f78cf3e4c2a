"""Cases by state and decisions by reason, from hand-made events (pure CaseBook, no broker)."""
import uuid
from datetime import datetime, timezone

from prometheus_client import CollectorRegistry, generate_latest

from consumers.lag.cases import COUNTED, DUPLICATE, IGNORED, CaseBook, book_metrics
from schemas import models

T = datetime(2025, 7, 1, 8, 0, tzinfo=timezone.utc)
SRC = {"system": "t", "instance": "1"}


def who(n: int) -> dict:
    return {"case_id": str(uuid.UUID(int=n)), "cccd": f"0010850000{n:02d}", "province": "01"}


def ev(kind: str, n: int, **kw) -> models.Event:
    meta = {"event_id": str(uuid.uuid4()), "occurred_at": T, "source": SRC, **who(n)}
    if kind == "opened":
        return models.CaseOpened(**meta, application_id=f"a{n}", classes=["B"], missing_notice_due_at=T,
                                 decision_due_at=T)
    if kind == "awaiting":
        return models.CaseAwaiting(**meta, missing=kw.get("missing", ["EXAM_MISSING"]))
    if kind == "approved":
        return models.CaseApproved(**meta, classes=["B"], warnings=kw.get("warnings", []), rule_set_version="2025.1")
    if kind == "rejected":
        return models.CaseRejected(**meta, reasons=kw["reasons"], rule_set_version="2025.1")
    if kind == "escalated":
        return models.CaseEscalated(**meta, reasons=kw["reasons"])
    if kind == "failed":
        return models.IssuanceDeliveryFailed(**meta, issuance_id="i", attempts=3, last_error="503")
    raise ValueError(kind)


def feed(book: CaseBook, *events) -> list[str]:
    return [book.apply(e.avro_name, e.to_avro_dict()) for e in events]


def render(book: CaseBook) -> str:
    class One:
        def collect(self):
            return book_metrics(book.snapshot(), reader_lag=0)

    reg = CollectorRegistry()
    reg.register(One())
    return generate_latest(reg).decode()


def test_states_follow_each_case_and_decisions_count_reasons():
    book = CaseBook()
    feed(book,
         ev("opened", 1), ev("opened", 2), ev("opened", 3), ev("opened", 4), ev("opened", 5),
         ev("awaiting", 2),
         ev("approved", 1, warnings=["MANUAL_REVIEW"]),
         ev("rejected", 3, reasons=["UNFIT", "EXAM_EXPIRED"]),
         ev("escalated", 4, reasons=["DEADLINE_EXCEEDED"]),
         ev("approved", 5), ev("failed", 5))
    t = book.snapshot()
    assert dict(t.states) == {"OPENED": 0, "AWAITING": 1, "APPROVED": 1, "REJECTED": 1, "ESCALATED": 1,
                              "DELIVERY_FAILED": 1}
    assert dict(t.decided) == {"APPROVED": 2, "REJECTED": 1, "ESCALATED": 1}
    assert dict(t.decisions) == {("APPROVED", "none"): 2, ("REJECTED", "UNFIT"): 1, ("REJECTED", "EXAM_EXPIRED"): 1,
                                 ("ESCALATED", "DEADLINE_EXCEEDED"): 1}
    assert len(book) == 5


def test_redelivered_events_count_once_and_never_move_a_case_back():
    book = CaseBook()
    opened, rejected = ev("opened", 1), ev("rejected", 1, reasons=["UNFIT"])
    results = feed(book, opened, rejected, rejected, opened)  # a crash re-sent both, the same ids
    assert results == [COUNTED, COUNTED, DUPLICATE, DUPLICATE]
    t = book.snapshot()
    assert t.states["REJECTED"] == 1 and t.states["OPENED"] == 0
    assert t.decisions[("REJECTED", "UNFIT")] == 1
    assert t.records == {"counted": 2, "duplicate": 2}


def test_order_across_partitions_does_not_matter():
    events = [ev("opened", 7), ev("awaiting", 7), ev("approved", 7), ev("failed", 7)]
    forward, backward = CaseBook(), CaseBook()
    feed(forward, *events)
    feed(backward, *reversed(events))
    f, b = forward.snapshot(), backward.snapshot()
    assert (f.states, f.decided, f.decisions) == (b.states, b.decided, b.decisions)
    assert f.states["DELIVERY_FAILED"] == 1 and f.decided["APPROVED"] == 1


def test_other_types_and_records_without_a_case_are_ignored():
    book = CaseBook()
    assert book.apply("vn.gplx.cases.IssuanceRequested", {"case_id": "x"}) == IGNORED
    assert book.apply("vn.gplx.cases.CaseOpened", {"case_id": ""}) == IGNORED
    book.undecodable()
    t = book.snapshot()
    assert t.records == {"ignored": 2, "undecodable": 1} and not +t.states


def test_metrics_have_every_state_and_bounded_reason_labels():
    book = CaseBook()
    feed(book, ev("opened", 1), ev("rejected", 1, reasons=["UNFIT"]), ev("escalated", 2, reasons=["MANUAL_REVIEW"]))
    text = render(book)
    for line in ('gplx_cases{state="OPENED"} 0.0', 'gplx_cases{state="REJECTED"} 1.0',
                 'gplx_cases{state="DELIVERY_FAILED"} 0.0',
                 'gplx_decided_cases_total{outcome="APPROVED"} 0.0',
                 'gplx_decided_cases_total{outcome="ESCALATED"} 1.0',
                 'gplx_decisions_total{outcome="REJECTED",reason="UNFIT"} 1.0',
                 'gplx_decisions_total{outcome="ESCALATED",reason="MANUAL_REVIEW"} 1.0',
                 'gplx_case_events_read_total{result="undecodable"} 0.0',
                 'gplx_cases_reader_lag_messages 0.0'):
        assert line in text, line
    reasons = {line.split('reason="')[1].split('"')[0] for line in text.splitlines()
               if line.startswith("gplx_decisions_total{")}
    assert reasons <= {r.value for r in models.ReasonCode} | {"none"}
