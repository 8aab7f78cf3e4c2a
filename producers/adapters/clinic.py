"""Clinic adapter: publish health certificates from a hospital system's export (CSV or JSON), row by row.

Why row by row with a verdict each: clinics were the pilot's weak link (few sent electronic exam data), so an
import must never fail as a whole because of one bad row, must say exactly which field of which row broke which
rule, and must lose nothing: every rejected row can be written back out, unchanged, with its reason, to be fixed
and re-imported. Re-importing is safe: a row without an event_id gets one derived from the certificate number,
version and signing time, so the same row always becomes the same event.

CSV columns (JSON: the same keys, one object per row, as a list or JSON lines):
    certificate_number  NNNNN/GKSKLX/<clinic code>/<yy>
    version_kind        ADD | EDIT | REVOKE
    cccd, clinic_code, health_group (1-3), requested_class
    conclusions         "B2:fit;A1:unfit" (CSV) or [{"licence_class": "B2", "fit": true}] (JSON); empty for REVOKE
    signed_at           ISO 8601; without an offset it is Vietnam time (UTC+7, no daylight saving)
    doctor              name of the concluding doctor
    signature           base64 of the clinic's digital signature
    event_id, occurred_at, signature_key_id   optional (signature_key_id: the clinic key that signed, see the README,
                                              "Signed health certificates")
"""
from __future__ import annotations

import base64
import binascii
import csv
import datetime as dt
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from pydantic import ValidationError

from producers.errors import PublishError
from producers.ids import derived_id
from producers.sdk import DeliveryResult, Publisher
from schemas import models
from schemas.errors import RegistryError, SchemaNotFound
from schemas.privacy import open_private
from schemas.validation import explain
from producers.errors import ExportError  # noqa: F401 - defined there, imported here as before

log = logging.getLogger(__name__)

VIETNAM = dt.timezone(dt.timedelta(hours=7), "ICT")
COLUMNS = ("certificate_number", "version_kind", "cccd", "clinic_code", "health_group", "requested_class",
           "conclusions", "signed_at", "doctor", "signature", "event_id", "occurred_at", "signature_key_id")
REQUIRED = COLUMNS[:10]
REJECT_REASON = "reject_reason"


class RowError(ValueError):
    """A row that cannot become a certificate; the message names the field(s) and rule(s), never the values."""


@dataclass(frozen=True)
class RowResult:
    row: int  # 1-based data row (CSV: the header is row 0)
    raw: dict[str, Any]
    certificate_number: str | None = None
    version_kind: str | None = None
    delivery: DeliveryResult | None = None
    reason: str | None = None
    duplicate_of: int | None = None  # an earlier row of the same file is the same certificate version

    @property
    def accepted(self) -> bool:
        return self.reason is None

    def line(self) -> str:
        """One line for the operator (certificate numbers are not personal data; CCCDs and names stay out)."""
        if self.duplicate_of is not None:
            return (f"row {self.row}: duplicate of row {self.duplicate_of} ({self.certificate_number} "
                    f"{self.version_kind}): not sent again")
        if self.accepted:
            d = self.delivery
            where = f" -> {d.topic}[{d.partition}]@{d.offset}" if d else ""
            return f"row {self.row}: accepted {self.certificate_number} {self.version_kind}{where}"
        return f"row {self.row}: rejected: {self.reason}"


# ---- reading --------------------------------------------------------------------------------------------------

def detect_format(path: Path, fmt: str | None) -> str:
    if fmt:
        if fmt not in ("csv", "json"):
            raise PublishError(f"unknown format {fmt!r}: use csv or json")
        return fmt
    return "json" if path.suffix.lower() in (".json", ".jsonl", ".ndjson") else "csv"


#: An export bigger than this is refused before anything is published (split it; a day of a big hospital's
#: certificates is well under a megabyte).
MAX_FILE_BYTES = 50 * 1024 * 1024


def read_rows(path: Path, fmt: str, encoding: str = "utf-8") -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """(row number, raw row or None, reason if the row could not even be read). Problems of the whole file
    (missing, too big, not text in `encoding`, CSV header without the required columns, a JSON object instead of
    a list of rows) raise ExportError before the first row, so a bad file publishes nothing."""
    text = _read_text(path, encoding)
    if not text.strip():
        raise ExportError(f"{path.name} is empty: nothing to publish")
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text))
        _check_header(path, reader.fieldnames or [])
        for number, row in enumerate(reader, start=1):
            extra = row.pop(None, None)
            yield number, row, ("row has more cells than the header has columns" if extra else None)
        return
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
        except ValueError as exc:
            raise ExportError(f"{path.name}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        for number, item in enumerate(items, start=1):
            yield number, (item if isinstance(item, dict) else None), (None if isinstance(item, dict) else
                                                                       "row is not a JSON object")
        return
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) > 1 and stripped.startswith("{"):
        try:
            whole = json.loads(stripped)
        except ValueError:
            whole = None
        if isinstance(whole, dict):  # one object over several lines: not JSON lines, and not a list of rows
            raise ExportError(f"{path.name} holds one JSON object, not rows: write a list of certificates "
                              f"([{{...}}, {{...}}]) or one object per line (JSON lines)")
    for number, line in enumerate(lines, start=1):
        try:
            item = json.loads(line)
        except ValueError:
            yield number, {"_line": line}, "row is not valid JSON"
            continue
        yield number, (item if isinstance(item, dict) else {"_line": line}), (
            None if isinstance(item, dict) else "row is not a JSON object")


def _read_text(path: Path, encoding: str) -> str:
    if not path.is_file():
        raise ExportError(f"no such file: {path}")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ExportError(f"{path.name} is {size // (1024 * 1024)} MB; the limit is {MAX_FILE_BYTES // (1024 * 1024)} MB "
                          f"per import: split the export")
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode Text" export is UTF-16 with a BOM
        encoding = "utf-16"
    elif b"\x00" in data[:4096]:
        raise ExportError(f"{path.name} looks binary (NUL bytes), not a CSV or JSON export")
    try:
        return data.decode("utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding)
    except LookupError:
        raise ExportError(f"unknown encoding {encoding!r} (e.g. utf-8, cp1258, cp1252)") from None
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ExportError(f"{path.name} is not {encoding} text (byte 0x{data[exc.start]:02x} on line {line}): save "
                          f"the export as UTF-8 (Excel: 'CSV UTF-8'), or pass its encoding, e.g. --encoding cp1258 "
                          f"(Windows Vietnamese) or cp1252") from None


def _check_header(path: Path, header: list[str]) -> None:
    names = [h.strip() for h in header]
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        unknown = [h for h in names if h not in COLUMNS]
        hint = f"; columns not ours: {', '.join(unknown)}" if unknown else ""
        raise ExportError(f"{path.name}: the header lacks required column(s) {', '.join(missing)}{hint} "
                          f"(expected: {', '.join(COLUMNS)})")


# ---- parsing --------------------------------------------------------------------------------------------------

def _rule(field: str, rule: str, message: str) -> str:
    return f"field '{field}' breaks rule {rule}: {message}"


def _text(raw: dict, name: str) -> str:
    value = raw.get(name)
    return "" if value is None else str(value).strip()


def _timestamp(raw: dict, name: str, problems: list[str]) -> dt.datetime | None:
    value = _text(raw, name)
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        problems.append(_rule(name, "datetime_format", "must be ISO 8601, e.g. 2025-08-30T09:15:00+07:00"))
        return None
    return moment.replace(tzinfo=VIETNAM) if moment.tzinfo is None else moment


def _conclusions(value: Any, problems: list[str]) -> list[dict[str, Any]]:
    if isinstance(value, list):
        return value  # JSON: already records; the model checks them
    out = []
    for part in filter(None, (p.strip() for p in str(value or "").split(";"))):
        cls, _, verdict = part.partition(":")
        verdict = verdict.strip().lower()
        if verdict not in ("fit", "unfit", "true", "false"):
            problems.append(_rule("conclusions", "conclusion_format",
                                  "each conclusion is <class>:fit or <class>:unfit, separated by ';'"))
            return []
        out.append({"licence_class": cls.strip(), "fit": verdict in ("fit", "true")})
    return out


def parse_row(raw: dict[str, Any]) -> models.HealthCertificate:
    """One export row -> a validated HealthCertificate, or RowError naming every broken field and rule."""
    problems = [_rule(name, "required", "column missing or empty") for name in REQUIRED
                if name != "conclusions" and _text(raw, name) == ""]
    if problems:
        raise RowError("; ".join(problems))
    signed_at = _timestamp(raw, "signed_at", problems)
    occurred_at = _timestamp(raw, "occurred_at", problems) if _text(raw, "occurred_at") else signed_at
    try:
        health_group = int(_text(raw, "health_group"))
    except ValueError:
        problems.append(_rule("health_group", "integer", "must be a whole number (1, 2 or 3)"))
        health_group = 0
    try:
        signature = base64.b64decode(_text(raw, "signature"), validate=True)
    except (binascii.Error, ValueError):
        problems.append(_rule("signature", "base64", "must be the base64 text of the signature bytes"))
        signature = b""
    conclusions = _conclusions(raw.get("conclusions"), problems)
    if problems:
        raise RowError("; ".join(problems))
    kind = _text(raw, "version_kind").upper()
    number = _text(raw, "certificate_number")
    event_id = _text(raw, "event_id") or derived_id("clinic-certificate", number, kind, signed_at.isoformat())
    try:
        return models.HealthCertificate(
            event_id=event_id, occurred_at=occurred_at,
            source=models.Source(system="clinic", instance=_text(raw, "clinic_code")),
            certificate_number=number, version_kind=kind, cccd=_text(raw, "cccd"),
            clinic_code=_text(raw, "clinic_code"), health_group=health_group,
            requested_class=_text(raw, "requested_class"), conclusions=conclusions, signed_at=signed_at,
            doctor=_text(raw, "doctor"), signature=signature, signature_key_id=_text(raw, "signature_key_id") or None,
        )
    except ValidationError as exc:
        raise RowError(explain(exc)) from None


# ---- publishing -----------------------------------------------------------------------------------------------

def publish_rows(rows: Iterable[tuple[int, dict | None, str | None]], publisher: Publisher) -> list[RowResult]:
    """Parse and publish each row on its own: a bad row is reported and the next one goes on. A row repeating an
    earlier row's certificate version (same event) is reported as a duplicate and not sent again."""
    results = []
    seen: dict[str, tuple[int, models.HealthCertificate]] = {}  # event id -> (row that published it, event)
    for number, raw, unreadable in rows:
        raw = raw or {}
        if unreadable:
            results.append(RowResult(number, raw, reason=unreadable))
            continue
        try:
            event = parse_row(raw)
            if event.event_id in seen:
                first, earlier = seen[event.event_id]
                if earlier != event:  # the processor would keep the first and silently drop this one
                    raise RowError(f"same certificate number, version and signing time as row {first} but "
                                   f"different content: send a correction as an EDIT with its own signing time")
                results.append(RowResult(number, raw, event.certificate_number, event.version_kind,
                                         duplicate_of=first))
                continue
            delivery = publisher.publish(event)
        except SchemaNotFound:  # a contract never registered: the operator's fix, and every row would fail alike
            raise
        except (RowError, PublishError, RegistryError) as exc:  # the row's reason; the next row may pass
            results.append(RowResult(number, raw, reason=str(exc)))
            continue
        seen[event.event_id] = (number, event)
        results.append(RowResult(number, raw, event.certificate_number, event.version_kind, delivery))
    accepted = sum(r.accepted for r in results)
    log.info("clinic import: %d rows, %d accepted, %d rejected", len(results), accepted, len(results) - accepted)
    return results


def load_rows(path: str | Path, fmt: str | None = None, encoding: str = "utf-8") -> list[tuple[int, dict | None, str | None]]:
    """Every row of an export, read and checked as a file (ExportError) before anything is published."""
    path = Path(path)
    return list(read_rows(path, detect_format(path, fmt), encoding))


def publish_file(path: str | Path, publisher: Publisher, fmt: str | None = None,
                 encoding: str = "utf-8") -> list[RowResult]:
    return publish_rows(load_rows(path, fmt, encoding), publisher)


def write_rejects(path: str | Path, results: Iterable[RowResult], fmt: str) -> int:
    """Write the rejected rows, as they came, plus a `reject_reason` column; returns how many."""
    rejected = [r for r in results if not r.accepted]
    path = Path(path)
    if fmt == "csv":
        columns = list(COLUMNS)
        for r in rejected:
            columns += [k for k in r.raw if k not in columns]
        with open_private(path, "w", newline="") as out:  # rejected rows are health data: owner only
            writer = csv.DictWriter(out, fieldnames=columns + [REJECT_REASON], extrasaction="ignore")
            writer.writeheader()
            for r in rejected:
                writer.writerow({**r.raw, REJECT_REASON: r.reason})
    else:
        with open_private(path, "w") as out:
            for r in rejected:
                out.write(json.dumps({**r.raw, REJECT_REASON: r.reason}, ensure_ascii=False) + "\n")
    return len(rejected)
