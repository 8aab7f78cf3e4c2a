"""The case store: `act` applies one batch of `cases.events` records to the database in ONE transaction, together
with the partitions' next offsets; queries read the rows.

**Exactly-once into the database.** The offsets that say how far the store has read live in the same database
(`store_offsets`) and change in the same transaction as the rows. A crash before the commit loses the rows *and*
the offsets of the batch, so the restarted store reads the batch again; a crash after it keeps both. Nothing is
committed to Kafka that the store relies on (`consumer.py` mirrors the offsets to the `case-store` group after the
commit, for `gplx-bus lag` only). On top, every event is applied at most once by its id (`case_events.event_id`
is the primary key): the case processor re-sends an output with the same id after its own crash, and such a
re-delivery changes nothing.

`act` is the "act" of a consume -> act -> commit loop whose commit is part of the act: the Kafka side
(`consumer.py`) only polls and hands batches over, so it can move onto the shared loop later.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Iterable, Sequence

from consumers.casestore import model
from consumers.casestore.db import Database
from consumers.casestore.model import CaseRow

_CHUNK = 500


@dataclass(frozen=True)
class Record:
    """One record of the topic as the store sees it: `kind` None for a record that is no case event (another
    type, a tombstone, undecodable): it only moves the offset."""

    partition: int
    offset: int
    kind: str | None = None
    record: dict | None = None


@dataclass
class ActResult:
    applied: int = 0
    duplicates: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class Page:
    rows: list[CaseRow]
    next_cursor: tuple[int, str] | None


class CaseStore:
    """One connection to the store's database; not shared between threads (open one store per thread)."""

    def __init__(self, db: Database, topic: str) -> None:
        self.db, self.topic = db, topic
        db.create_schema()
        self._conn = db.connect()

    def close(self) -> None:
        self._conn.close()

    # -- write path ------------------------------------------------------------------------------------------------
    def offsets(self) -> dict[int, int]:
        """Partition -> next offset to read, as committed with the rows."""
        cur = self._conn.execute("SELECT topic_partition, next_offset FROM store_offsets WHERE topic = %s",
                                 (self.topic,))
        return {p: o for p, o in cur.fetchall()}

    def act(self, batch: Sequence[Record]) -> ActResult:
        """Apply a batch (in offset order per partition) and its offsets in one transaction."""
        result = ActResult()
        if not batch:
            return result
        fresh: dict[str, Record] = {}
        for rec in batch:
            if rec.kind is None:
                result.skipped += 1
            elif rec.record["event_id"] in fresh:
                result.duplicates += 1
            else:
                fresh[rec.record["event_id"]] = rec
        ends: dict[int, int] = {}
        for rec in batch:
            ends[rec.partition] = max(ends.get(rec.partition, -1), rec.offset + 1)
        with self._conn.transaction():
            seen = self._existing("SELECT event_id FROM case_events WHERE event_id IN ({})", list(fresh))
            new = [rec for event_id, rec in fresh.items() if event_id not in seen]
            result.duplicates += len(fresh) - len(new)
            rows = {r.case_id: r for r in self._rows([rec.record["case_id"] for rec in new])}
            for rec in new:
                case_id = rec.record["case_id"]
                rows[case_id] = model.apply(rows.get(case_id), rec.kind, rec.record)
            cur = self._conn.cursor()
            if new:
                cur.executemany(
                    "INSERT INTO case_events (event_id, case_id, type, occurred_at, topic_partition, topic_offset,"
                    " body) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    [(r.record["event_id"], r.record["case_id"], r.kind, model.millis(r.record["occurred_at"]),
                      r.partition, r.offset, model.history_body(r.record)) for r in new])
                cols = ", ".join(model.COLUMNS)
                updates = ", ".join(f"{c} = excluded.{c}" for c in model.COLUMNS[1:])
                cur.executemany(
                    f"INSERT INTO cases ({cols}) VALUES ({', '.join(['%s'] * len(model.COLUMNS))}) "
                    f"ON CONFLICT (case_id) DO UPDATE SET {updates}",
                    [row.to_db() for row in rows.values()])
            cur.executemany(
                "INSERT INTO store_offsets (topic, topic_partition, next_offset) VALUES (%s, %s, %s) "
                "ON CONFLICT (topic, topic_partition) DO UPDATE SET next_offset = excluded.next_offset",
                [(self.topic, p, o) for p, o in sorted(ends.items())])
        result.applied = len(new)
        return result

    def purge(self, older_than_ms: int) -> int:
        """Delete cases (and their history) not updated since `older_than_ms`: the store keeps what
        `cases.events` keeps (AUDIT_RETENTION), no longer. Returns how many cases went."""
        with self._conn.transaction():
            self._conn.execute("DELETE FROM case_events WHERE case_id IN "
                               "(SELECT case_id FROM cases WHERE updated_at < %s)", (older_than_ms,))
            return self._conn.execute("DELETE FROM cases WHERE updated_at < %s", (older_than_ms,)).rowcount

    # -- reads -------------------------------------------------------------------------------------------------
    def by_application(self, application_id: str) -> CaseRow | None:
        rows = self._select("WHERE application_id = %s ORDER BY updated_at DESC LIMIT 1", (application_id,))
        return rows[0] if rows else None

    def by_cccd(self, cccd: str) -> list[CaseRow]:
        return self._select("WHERE cccd = %s ORDER BY updated_at DESC, case_id", (cccd,))

    def province_page(self, province: str, *, state: str | None = None, reason: str | None = None,
                      since_ms: int | None = None, after: tuple[int, str] | None = None,
                      limit: int = 100) -> Page:
        """Cases of a province by (updated_at, case_id), from `since_ms` or after a page's last row."""
        where, params = ["province = %s"], [province]
        if state:
            where.append("state = %s")
            params.append(state)
        if reason:
            where.append("(reasons LIKE %s OR missing LIKE %s)")
            params += [f'%"{reason}"%'] * 2
        if since_ms is not None:
            where.append("updated_at >= %s")
            params.append(since_ms)
        if after is not None:
            where.append("(updated_at > %s OR (updated_at = %s AND case_id > %s))")
            params += [after[0], after[0], after[1]]
        rows = self._select(f"WHERE {' AND '.join(where)} ORDER BY updated_at, case_id LIMIT %s",
                            (*params, limit + 1))
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, (rows[-1].updated_at, rows[-1].case_id) if more else None)

    def history(self, case_id: str) -> list[tuple[str, int, str]]:
        return self._conn.execute("SELECT type, occurred_at, body FROM case_events WHERE case_id = %s "
                                  "ORDER BY occurred_at, topic_partition, topic_offset", (case_id,)).fetchall()

    def states(self, province: str | None = None) -> list[tuple[str, list[str], int]]:
        """(state, reasons, how many cases) over every case, or over one province's: grouped in the database."""
        tail, params = ("WHERE province = %s", (province,)) if province else ("", ())
        cur = self._conn.execute(f"SELECT state, reasons, COUNT(*) FROM cases {tail} GROUP BY state, reasons",
                                 params)
        return [(s, json.loads(r), n) for s, r, n in cur.fetchall()]

    def all_rows(self) -> list[CaseRow]:
        return self._select("ORDER BY case_id", ())

    def event_counts(self) -> dict[str, int]:
        return dict(self._conn.execute("SELECT case_id, COUNT(*) FROM case_events GROUP BY case_id").fetchall())

    def count(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM cases").fetchone()[0]

    def checksum(self) -> str:
        """SHA-256 of every row of `cases` and every event of the history, in key order: equal after a rebuild."""
        digest = hashlib.sha256()
        for row in self.all_rows():
            digest.update(repr(row.to_db()).encode())
        cur = self._conn.execute("SELECT event_id, case_id, type, occurred_at, body FROM case_events "
                                 "ORDER BY event_id")
        for values in cur.fetchall():
            digest.update(repr(tuple(values)).encode())
        return digest.hexdigest()

    # -- helpers -----------------------------------------------------------------------------------------------
    def _select(self, tail: str, params: Iterable) -> list[CaseRow]:
        cur = self._conn.execute(f"SELECT {', '.join(model.COLUMNS)} FROM cases {tail}", tuple(params))
        return [CaseRow.from_db(v) for v in cur.fetchall()]

    def _rows(self, case_ids: list[str]) -> list[CaseRow]:
        out = []
        ids = sorted(set(case_ids))
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i:i + _CHUNK]
            out += self._select(f"WHERE case_id IN ({', '.join(['%s'] * len(chunk))})", chunk)
        return out

    def _existing(self, query: str, keys: list[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(keys), _CHUNK):
            chunk = keys[i:i + _CHUNK]
            cur = self._conn.execute(query.format(", ".join(["%s"] * len(chunk))), tuple(chunk))
            found.update(k for (k,) in cur.fetchall())
        return found
