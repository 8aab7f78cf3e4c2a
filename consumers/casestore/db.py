"""The case store's database: embedded SQLite by default, PostgreSQL (psycopg 3) in production.

One URL names it: `sqlite:///path/cases.db` (a file, created if absent, 0600: the rows hold CCCDs) or
`postgresql://user@host:port/dbname?passfile=/path/.pgpass`. A password inside the URL is refused: it would be
visible in `ps` and in shell history; libpq reads it from the passfile (0600) or its own PGPASSWORD/PGPASSFILE.

The SQL is written once, with `%s` placeholders and `INSERT ... ON CONFLICT`, which both engines understand
(SQLite >= 3.24); for SQLite the placeholders become `?`. Times are integers (milliseconds since the epoch, UTC)
and lists are JSON text, so both engines hold byte-identical rows and the checksum of a table is comparable.
"""
from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from consumers.errors import DatabaseError  # noqa: F401 - raised here, imported from here by callers

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS cases (
        case_id TEXT PRIMARY KEY,
        application_id TEXT,
        cccd TEXT NOT NULL,
        province TEXT NOT NULL,
        state TEXT NOT NULL,
        reasons TEXT NOT NULL,
        missing TEXT NOT NULL,
        warnings TEXT NOT NULL,
        classes TEXT NOT NULL,
        new_classes TEXT NOT NULL,
        missing_notice_due_at BIGINT,
        decision_due_at BIGINT,
        opened_at BIGINT,
        decided_at BIGINT,
        updated_at BIGINT NOT NULL,
        events INTEGER NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS cases_application ON cases (application_id)",
    "CREATE INDEX IF NOT EXISTS cases_cccd ON cases (cccd)",
    "CREATE INDEX IF NOT EXISTS cases_province ON cases (province, updated_at, case_id)",
    """CREATE TABLE IF NOT EXISTS case_events (
        event_id TEXT PRIMARY KEY,
        case_id TEXT NOT NULL,
        type TEXT NOT NULL,
        occurred_at BIGINT NOT NULL,
        topic_partition INTEGER NOT NULL,
        topic_offset BIGINT NOT NULL,
        body TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS case_events_case ON case_events (case_id, occurred_at)",
    """CREATE TABLE IF NOT EXISTS store_offsets (
        topic TEXT NOT NULL,
        topic_partition INTEGER NOT NULL,
        next_offset BIGINT NOT NULL,
        PRIMARY KEY (topic, topic_partition))""",
)


@dataclass(frozen=True)
class Database:
    """Where the store lives. `connect()` gives a DB-API connection; `sql()` adapts a statement's placeholders."""

    url: str

    @property
    def dialect(self) -> str:
        return urlsplit(self.url).scheme.split("+")[0]

    @property
    def path(self) -> Path:
        return Path(urlsplit(self.url).path if not self.url.startswith("sqlite:///") else self.url[len("sqlite:///"):])

    def sql(self, statement: str) -> str:
        return statement.replace("%s", "?") if self.dialect == "sqlite" else statement

    def connect(self):
        if self.dialect == "sqlite":
            if not self.path.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")  # the API reads while the store writes
            conn.execute("PRAGMA synchronous=NORMAL")
            return _SqliteConnection(conn)
        import psycopg

        try:
            return psycopg.connect(self.url, connect_timeout=10, autocommit=True)
        except psycopg.OperationalError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DatabaseError(f"cannot connect to the case store database {self.safe_url}: {first}") from None

    @property
    def safe_url(self) -> str:
        """The URL without its query (a passfile path is no secret, but keep lines short)."""
        return self.url.split("?", 1)[0]

    def create_schema(self) -> None:
        conn = self.connect()
        try:
            with conn.transaction():
                for statement in SCHEMA:
                    conn.execute(statement)
        finally:
            conn.close()


def database(url: str) -> Database:
    """Check the URL: sqlite:///FILE or postgresql://USER@HOST:PORT/DB[?passfile=FILE], no password inside."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        if not url.startswith("sqlite:///") or len(url) <= len("sqlite:///"):
            raise DatabaseError(f"{url!r}: an SQLite URL is sqlite:///FILE (e.g. sqlite:///./cases.db)")
        return Database(url)
    if parts.scheme in ("postgresql", "postgres"):
        if parts.password:
            raise DatabaseError("the database URL holds a password: put it in a passfile (0600) and give "
                                "?passfile=FILE instead, so it never shows in `ps` or a shell history")
        if not parts.hostname or not parts.path.strip("/"):
            raise DatabaseError(f"{url!r}: a PostgreSQL URL is postgresql://USER@HOST:PORT/DB[?passfile=FILE]")
        return Database(url)
    raise DatabaseError(f"{url!r}: unsupported database; use sqlite:///FILE or postgresql://USER@HOST:PORT/DB")


class _SqliteConnection:
    """sqlite3 with psycopg 3's shape (autocommit connection): `with conn.transaction():` is one transaction
    (BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on an exception), `execute` returns a cursor, `cursor().executemany`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._depth = 0

    def execute(self, statement: str, params=()):
        return self._conn.execute(statement.replace("%s", "?"), params)

    def executemany(self, statement: str, rows):
        return self._conn.executemany(statement.replace("%s", "?"), rows)

    def cursor(self):
        return self

    def transaction(self):
        return self

    def __enter__(self):
        if self._depth == 0:
            self._conn.execute("BEGIN IMMEDIATE")
        self._depth += 1
        return self

    def __exit__(self, exc_type, *_):
        self._depth -= 1
        if self._depth == 0:
            self._conn.execute("ROLLBACK" if exc_type else "COMMIT")

    def close(self) -> None:
        self._conn.close()
