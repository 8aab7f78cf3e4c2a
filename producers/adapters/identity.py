"""Identity adapter: answers IdentityCheckRequested (identity.requests) from the population database (VNeID),
here a local JSON-lines file keyed by CCCD.

Record format (one JSON object per line; fields in RECORD_FIELDS, a sample in samples/identity.jsonl;
"sex" is MALE or FEMALE, optional):
    {"cccd": "001085012345", "full_name": "Nguyễn Văn An", "date_of_birth": "1985-03-14", "sex": "MALE",
     "phones": ["0912345678"]}

The answer (IdentityCheckResult on identity.results, keyed by CCCD) says whether name and date of birth match and
whether the applicant's phone is tied to the CCCD - the pilot's main failure point. A CCCD the database does not
know is a mismatch on "cccd" (the case is rejected); a different name or date of birth alone is reported as such
and only warns: the new licence uses the CCCD data, so the answer carries the record's name, date of birth and sex
(`record_*` fields) whenever the CCCD is known. Without a "sex" in the record, it is read from the CCCD's fourth
digit (even: male, odd: female), as the CCCD numbering defines it.
"""
from __future__ import annotations

import datetime as dt
import socket
import unicodedata

from producers.adapters.localdb import JsonLinesDatabase
from producers.ids import derived_id
from schemas import models

SYSTEM = "identity"

#: The fields of one record of the population database, as this adapter reads them. `gplx-bus adapters run
#: --help` and producers/adapters/README.md show them; a unit test keeps samples/identity.jsonl to them.
#: Merge note: another branch adds full_name, date_of_birth and sex of the CCCD record to the identity answer;
#: a `sex` field read from this file must be added here, to the README and to the sample then.
RECORD_FIELDS = {
    "cccd": "12 digits, the key (required); a CCCD not in the file answers a mismatch on cccd",
    "full_name": "name on the CCCD; compared ignoring case and spacing, not diacritics",
    "date_of_birth": "YYYY-MM-DD",
    "phones": "numbers tied to the CCCD, 0xxxxxxxxx or +84xxxxxxxxx ([] if none)",
}


def normalise_name(name: str) -> str:
    """Compare names the way a clerk would: same letters and diacritics, any case or spacing (NFC)."""
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


def normalise_phone(phone: str) -> str:
    """+84xxxxxxxxx and 0xxxxxxxxx are the same number."""
    phone = phone.strip().replace(" ", "")
    return "0" + phone[3:] if phone.startswith("+84") else phone


def answer(request: models.IdentityCheckRequested, db: JsonLinesDatabase,
           now: dt.datetime | None = None) -> models.IdentityCheckResult:
    """The population database's answer to one request. Pure apart from the database read."""
    record = db.get(request.cccd)
    on_record: dict = {}
    if record is None:
        match, mismatched, phone_tied = False, ["cccd"], False
    else:
        on_record = _record_data(request.cccd, record)
        mismatched = []
        if normalise_name(record.get("full_name", "")) != normalise_name(request.full_name):
            mismatched.append("full_name")
        if str(record.get("date_of_birth")) != request.date_of_birth.isoformat():
            mismatched.append("date_of_birth")
        match = not mismatched
        phone_tied = normalise_phone(request.phone) in {normalise_phone(p) for p in record.get("phones", [])}
    return models.IdentityCheckResult(
        event_id=derived_id("identity-answer", request.event_id),  # same request -> same answer id
        occurred_at=now or dt.datetime.now(dt.timezone.utc),
        source=models.Source(system=SYSTEM, instance=socket.gethostname()),
        correlation_id=request.correlation_id,
        request_id=request.request_id, case_id=request.case_id, cccd=request.cccd, province=request.province,
        match=match, mismatched_fields=mismatched, phone_tied=phone_tied, **on_record,
    )


def _record_data(cccd: str, record: dict) -> dict:
    """The record's identity data as IdentityCheckResult's record_* fields (a missing or unreadable value: null)."""
    try:
        born = dt.date.fromisoformat(str(record.get("date_of_birth")))
    except ValueError:
        born = None
    sex = record.get("sex")
    if sex not in ("MALE", "FEMALE"):
        sex = "MALE" if int(cccd[3]) % 2 == 0 else "FEMALE"
    return {"record_full_name": (record.get("full_name") or "").strip() or None, "record_date_of_birth": born,
            "record_sex": sex}
