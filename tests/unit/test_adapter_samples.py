"""The shipped sample databases of the identity and police adapters: loaded through the adapters' own loader, kept
to the documented fields (RECORD_FIELDS, the adapters' README) and able to answer a request."""
from __future__ import annotations

import datetime as dt
import json
import logging
import re
from pathlib import Path

import pytest

from producers.adapters import identity, police
from producers.adapters.localdb import JsonLinesDatabase
from schemas import models, validation

SAMPLES = Path(identity.__file__).parent / "samples"
README = (Path(identity.__file__).parent / "README.md").read_text(encoding="utf-8")
NOW = dt.datetime(2026, 11, 30, 9, tzinfo=dt.timezone.utc)
SRC = models.Source(system="case-processor", instance="t")
REQUIRED = {"identity.jsonl": {"cccd"}, "police.jsonl": {"cccd", "licence_number"}}
FIELDS = {"identity.jsonl": identity.RECORD_FIELDS, "police.jsonl": police.RECORD_FIELDS}


def _records(name: str) -> list[dict]:
    return [json.loads(line) for line in (SAMPLES / name).read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("name", ["identity.jsonl", "police.jsonl"])
def test_sample_loads_whole_through_the_adapters_loader(name, caplog):
    with caplog.at_level(logging.WARNING, logger="producers.adapters.localdb"):
        db = JsonLinesDatabase(SAMPLES / name)
        assert len(db) == len(_records(name)) >= 3
    assert caplog.records == []  # no line skipped


@pytest.mark.parametrize("name", ["identity.jsonl", "police.jsonl"])
def test_sample_uses_only_documented_fields_and_every_one_of_them(name):
    records = _records(name)
    documented = set(FIELDS[name])
    for record in records:
        assert set(record) <= documented, f"undocumented field in {name}: {set(record) - documented}"
        assert REQUIRED[name] <= set(record)
    used = set().union(*records)
    # issuing_authority is optional and shown in one record; every other field appears in the sample
    assert documented <= used, f"documented but not shown in {name}: {documented - used}"


@pytest.mark.parametrize("fields", [identity.RECORD_FIELDS, police.RECORD_FIELDS])
def test_the_readme_documents_every_field(fields):
    for field in fields:
        assert f"| `{field}` |" in README


def test_samples_are_clearly_fake_and_valid():
    for record in _records("identity.jsonl"):
        validation.cccd(record["cccd"])  # a CCCD the bus accepts (old province code)...
        assert record["cccd"][6:].startswith("0000")  # ...from an obviously made-up series
        assert all(re.fullmatch(r"(0|\+84)9000000\d\d", p) for p in record["phones"])
    assert {r["cccd"] for r in _records("identity.jsonl")} == {r["cccd"] for r in _records("police.jsonl")}


def _identity_request(record: dict, phone: str) -> models.IdentityCheckRequested:
    return models.IdentityCheckRequested(
        event_id="1b4e28ba-2fa1-11d2-883f-0016d3cca427", occurred_at=NOW, source=SRC, correlation_id="c",
        request_id="r", case_id="c", cccd=record["cccd"], province=record["cccd"][1:3],
        full_name=record["full_name"].upper(), date_of_birth=dt.date.fromisoformat(record["date_of_birth"]),
        phone=phone)


def test_the_samples_answer_requests():
    ids = JsonLinesDatabase(SAMPLES / "identity.jsonl")
    answers = {r["cccd"]: identity.answer(_identity_request(r, (r["phones"] or ["0900000099"])[0]), ids, NOW)
               for r in _records("identity.jsonl")}
    assert all(a.match and a.mismatched_fields == [] for a in answers.values())
    assert [a.phone_tied for a in answers.values()] == [bool(r["phones"]) for r in _records("identity.jsonl")]

    licences = JsonLinesDatabase(SAMPLES / "police.jsonl")
    for record in _records("police.jsonl"):
        request = models.LicenceLookupRequested(
            event_id="1b4e28ba-2fa1-11d2-883f-0016d3cca427", occurred_at=NOW, source=SRC, request_id="r",
            case_id="c", cccd=record["cccd"], province=record["cccd"][1:3], licence_number=record["licence_number"])
        status = police.answer(request, licences, NOW)
        assert status.found and status.revoked == record["revoked"]
        assert [c.licence_class for c in status.classes] == [c["licence_class"] for c in record["classes"]]
        assert status.point_balance == record["point_balance"]
