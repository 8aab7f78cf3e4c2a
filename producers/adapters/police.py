"""Police adapter: answers LicenceLookupRequested (police.requests) from the licence and violation database, here
a local JSON-lines file keyed by CCCD.

Record format (one JSON object per line; fields in RECORD_FIELDS, a sample in samples/police.jsonl):
    {"cccd": "001085012345", "licence_number": "010123456789",
     "classes": [{"licence_class": "B2", "issued_on": "2016-05-02", "expires_on": "2026-05-02"}],
     "revoked": false, "unresolved_violations": 0, "point_balance": 12}

An unknown CCCD, or a licence number that is not this citizen's, answers found=false (the case goes to the
province for verification). The issuing authority is configurable: licensing moved from the Ministry of Transport
to the Ministry of Public Security on 1 March 2025 (Decree 02/2025).
"""
from __future__ import annotations

import datetime as dt
import socket

from producers.adapters.localdb import JsonLinesDatabase
from producers.ids import derived_id
from schemas import models

SYSTEM = "police"
DEFAULT_AUTHORITY = "Cục Cảnh sát giao thông, Bộ Công an"

#: The fields of one record of the licence database, as this adapter reads them. `gplx-bus adapters run --help`
#: and producers/adapters/README.md show them; a unit test keeps samples/police.jsonl to them.
RECORD_FIELDS = {
    "cccd": "12 digits, the key (required)",
    "licence_number": "the licence (GPLX) number; a request with another number answers found=false (required)",
    "classes": "[{licence_class, issued_on: YYYY-MM-DD, expires_on: YYYY-MM-DD or null = never expires}]",
    "revoked": "true if the licence is revoked (default false)",
    "unresolved_violations": "count of unpaid or unresolved traffic violations (default 0)",
    "point_balance": "licence points left, 0-12 (default 12)",
    "issuing_authority": "optional; default: " + DEFAULT_AUTHORITY,
}


def _date(value) -> dt.date | None:
    return None if value in (None, "") else dt.date.fromisoformat(str(value))


def answer(request: models.LicenceLookupRequested, db: JsonLinesDatabase, now: dt.datetime | None = None,
           authority: str = DEFAULT_AUTHORITY) -> models.LicenceStatus:
    """The licence database's answer to one request. Pure apart from the database read."""
    record = db.get(request.cccd)
    found = record is not None and str(record.get("licence_number")) == request.licence_number
    common = dict(
        event_id=derived_id("police-answer", request.event_id),  # same request -> same answer id
        occurred_at=now or dt.datetime.now(dt.timezone.utc),
        source=models.Source(system=SYSTEM, instance=socket.gethostname()),
        correlation_id=request.correlation_id,
        request_id=request.request_id, case_id=request.case_id, cccd=request.cccd, province=request.province,
        licence_number=request.licence_number,
    )
    if not found:
        # Nothing is known: the counters are zero and mean nothing (readers must look at `found` first).
        return models.LicenceStatus(**common, found=False, classes=[], revoked=False, unresolved_violations=0,
                                    point_balance=0, issuing_authority=None)
    return models.LicenceStatus(
        **common, found=True,
        classes=[models.LicenceClassStatus(licence_class=c["licence_class"], issued_on=_date(c["issued_on"]),
                                           expires_on=_date(c.get("expires_on")))
                 for c in record.get("classes", [])],
        revoked=bool(record.get("revoked", False)),
        unresolved_violations=int(record.get("unresolved_violations", 0)),
        point_balance=int(record.get("point_balance", 12)),
        issuing_authority=record.get("issuing_authority") or authority,
    )
