"""Police adapter: answers LicenceLookupRequested (police.requests) from the licence and violation database, here
a local JSON-lines file keyed by CCCD.

Record format (one JSON object per line):
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
