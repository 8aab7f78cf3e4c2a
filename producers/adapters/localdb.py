"""A small local database: JSON lines keyed by CCCD, standing in for the population and police databases.

Why a file of JSON lines: the simulator writes it and a person can edit it by hand; the adapters re-read it when
it changes, so a demo can add a citizen while the adapters run. Writes replace the file atomically (write a temp
file, rename), so a reader never sees half a file.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterable

log = logging.getLogger(__name__)


class JsonLinesDatabase:
    """Records (dicts) by `key`, loaded from a JSON-lines file and reloaded when its size or mtime changes."""

    def __init__(self, path: str | Path, key: str = "cccd") -> None:
        self.path = Path(path)
        self.key = key
        self._records: dict[str, dict[str, Any]] = {}
        self._stamp: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def get(self, key: str) -> dict[str, Any] | None:
        self._reload_if_changed()
        return self._records.get(key)

    def __len__(self) -> int:
        self._reload_if_changed()
        return len(self._records)

    def _reload_if_changed(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            if self._stamp != (0, 0):
                log.warning("database %s does not exist: every look-up answers 'unknown'", self.path)
                self._records, self._stamp = {}, (0, 0)
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        with self._lock:
            records = {}
            for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    records[str(record[self.key])] = record
                except (ValueError, KeyError, TypeError):
                    log.warning("database %s line %d is not a JSON object with %r; skipped", self.path, number,
                                self.key)
            self._records, self._stamp = records, stamp
        log.info("database %s loaded: %d records", self.path, len(records))


def write_records(path: str | Path, records: Iterable[dict[str, Any]], *, key: str = "cccd",
                  merge: bool = True) -> int:
    """Write records to a JSON-lines database, replacing the file atomically; with `merge`, records already in
    the file stay unless a new record has the same key. Returns the number of records in the file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    merged: dict[str, dict[str, Any]] = {}
    if merge and path.exists():
        db = JsonLinesDatabase(path, key)
        db._reload_if_changed()
        merged.update(db._records)
    for record in records:
        merged[str(record[key])] = record
    # mkstemp creates the file 0600, and the rename keeps that: the records are personal data (CCCD, names).
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        for record in merged.values():
            out.write(json.dumps(record, ensure_ascii=False, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)
    return len(merged)
