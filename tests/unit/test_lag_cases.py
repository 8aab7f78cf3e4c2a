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


DAY_MS = 24 * 3600 * 1000


def feed_at(book: CaseBook, at_ms: int, *events) -> list[str]:
    return [book.apply(e.avro_name, e.to_avro_dict(), timestamp_ms=at_ms) for e in events]


def test_decided_cases_are_forgotten_after_the_horizon_and_open_ones_never():
    book = CaseBook(horizon_s=7 * 24 * 3600)
    feed_at(book, 0, ev("opened", 1), ev("opened", 2), ev("opened", 3))
    feed_at(book, 1 * DAY_MS, ev("approved", 1))
    feed_at(book, 2 * DAY_MS, ev("rejected", 2, reasons=["UNFIT"]))
    assert len(book) == 3
    assert feed_at(book, 3 * DAY_MS, ev("approved", 1)) == [DUPLICATE]  # a re-delivery within the horizon
    feed_at(book, 8 * DAY_MS + 1, ev("opened", 4))  # case 1 decided 7 days + 1 ms ago: forgotten
    assert len(book) == 3 and len(book._final) == 1
    feed_at(book, 100 * DAY_MS, ev("awaiting", 3))
    assert len(book) == 2  # the open cases 3 and 4 stay, however old
    t = book.snapshot()
    assert t.states["APPROVED"] == 1 and t.states["REJECTED"] == 1 and t.states["AWAITING"] == 1
    assert t.decided == {"APPROVED": 1, "REJECTED": 1}


def test_memory_is_bounded_by_open_and_recent_cases_over_a_year():
    """A year of 200 cases a day, each decided 3 days after it opened: the book holds ~10 days of cases."""
    book = CaseBook()
    n = 0
    for day in range(365):
        for _ in range(200):
            n += 1
            book.apply("vn.gplx.cases.CaseOpened", {"case_id": str(uuid.UUID(int=n))}, timestamp_ms=day * DAY_MS)
            if n > 600:
                book.apply("vn.gplx.cases.CaseApproved", {"case_id": str(uuid.UUID(int=n - 600))},
                           timestamp_ms=day * DAY_MS)
    assert book.snapshot().decided["APPROVED"] == n - 600
    assert len(book) <= 200 * (3 + 7 + 1)


def test_a_dumped_book_restores_to_the_same_numbers_and_keeps_forgetting():
    book = CaseBook(horizon_s=2 * 24 * 3600)
    feed_at(book, 0, ev("opened", 1), ev("opened", 2), ev("opened", 3), ev("awaiting", 3))
    feed_at(book, DAY_MS, ev("escalated", 1, reasons=["DEADLINE_EXCEEDED"]), ev("approved", 2), ev("failed", 2))
    import json
    copy = CaseBook.restore(json.loads(json.dumps(book.dump())))
    assert copy.snapshot() == book.snapshot() and len(copy) == len(book) == 3
    assert feed_at(copy, DAY_MS, ev("approved", 2)) == [DUPLICATE]
    feed_at(copy, 3 * DAY_MS + 1, ev("opened", 5))
    assert len(copy) == 2  # 1 and 2 forgotten after restore too
    assert render(copy).count("gplx_cases{") == 6
