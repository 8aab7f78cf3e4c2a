"""Clinic export parsing: each row on its own, with the field and rule named, values never quoted."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from producers.adapters import clinic
from producers.sdk import DeliveryResult

SAMPLE = Path(clinic.__file__).parent / "samples" / "health-certificates.csv"
GOOD = {"certificate_number": "00101/GKSKLX/BVBM01/25", "version_kind": "ADD", "cccd": "001085012345",
        "clinic_code": "BVBM01", "health_group": "2", "requested_class": "B2", "conclusions": "B2:fit",
        "signed_at": "2025-08-28T08:30:00+07:00", "doctor": "BS. Hoa", "signature": "c2ln"}


def test_sample_file_parses_completely():
    rows = list(clinic.read_rows(SAMPLE, "csv"))
    certs = [clinic.parse_row(raw) for _, raw, bad in rows]
    assert len(certs) == 5 and {c.version_kind for c in certs} == {"ADD", "EDIT"}
    naive = certs[1]  # "2025-08-28T09:05:00" without an offset is Vietnam time
    assert naive.signed_at.isoformat() == "2025-08-28T02:05:00+00:00"


def test_same_row_same_event_id_so_reimport_is_idempotent():
    assert clinic.parse_row(GOOD).event_id == clinic.parse_row(dict(GOOD)).event_id
    assert clinic.parse_row(GOOD).event_id != clinic.parse_row({**GOOD, "version_kind": "EDIT"}).event_id


@pytest.mark.parametrize("change, expected", [
    ({"cccd": "991085012345"}, "field 'cccd' breaks rule cccd_province"),
    ({"cccd": ""}, "field 'cccd' breaks rule required"),
    ({"health_group": "two"}, "field 'health_group' breaks rule integer"),
    ({"signed_at": "28/08/2025"}, "field 'signed_at' breaks rule datetime_format"),
    ({"signature": "%%%"}, "field 'signature' breaks rule base64"),
    ({"conclusions": "B2=ok"}, "field 'conclusions' breaks rule conclusion_format"),
    ({"clinic_code": "OTHER"}, "breaks rule certificate_facility"),
    ({"requested_class": "Z9"}, "field 'requested_class' breaks rule licence_class_known"),
    ({"health_group": "1", "requested_class": "C"}, "breaks rule health_group_covers_class"),
])
def test_bad_field_names_field_and_rule_without_the_value(change, expected):
    with pytest.raises(clinic.RowError) as info:
        clinic.parse_row({**GOOD, **change})
    assert expected in str(info.value)
    assert "991085012345" not in str(info.value) and "\n" not in str(info.value)


class FakePublisher:
    def __init__(self):
        self.events = []

    def publish(self, event):
        self.events.append(event)
        return DeliveryResult("health.exam-results", 0, len(self.events) - 1, event.event_id)


def test_a_bad_row_does_not_stop_the_others_and_rejects_keep_the_row(tmp_path):
    path = tmp_path / "export.csv"
    text = SAMPLE.read_text(encoding="utf-8").splitlines()
    text.insert(2, text[1].replace("001085012345", "001085").replace("00101", "00199"))
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    publisher = FakePublisher()
    results = clinic.publish_file(path, publisher)
    assert [r.accepted for r in results] == [True, False, True, True, True, True]
    assert results[1].line() == "row 2: rejected: field 'cccd' breaks rule cccd_format: CCCD must be exactly 12 digits"
    assert len(publisher.events) == 5
    assert clinic.write_rejects(tmp_path / "rejects.csv", results, "csv") == 1
    again = list(clinic.read_rows(tmp_path / "rejects.csv", "csv"))
    assert again[0][1]["certificate_number"] == "00199/GKSKLX/BVBM01/25"
    assert "cccd_format" in again[0][1]["reject_reason"]


def test_json_list_and_json_lines(tmp_path):
    as_list = tmp_path / "a.json"
    as_list.write_text(json.dumps([GOOD, {**GOOD, "conclusions": [{"licence_class": "B2", "fit": True}],
                                          "certificate_number": "00102/GKSKLX/BVBM01/25"}, 7]))
    results = clinic.publish_file(as_list, FakePublisher())
    assert [r.accepted for r in results] == [True, True, False] and results[2].reason == "row is not a JSON object"
    lines = tmp_path / "b.jsonl"
    lines.write_text(json.dumps(GOOD) + "\n{broken\n")
    results = clinic.publish_file(lines, FakePublisher())
    assert [r.accepted for r in results] == [True, False]


# --- the file as a whole: checked before anything is published -------------------------------------------------
def _export(tmp_path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name, data, expected", [
    ("missing.csv", None, "no such file"),
    ("empty.csv", b"", "is empty: nothing to publish"),
    ("blank.json", b"  \n\n", "is empty: nothing to publish"),
    ("random.csv", bytes(range(256)) * 4, "looks binary"),
    ("win.csv", "certificate_number,doctor\n1,BS. Hòa\n".encode("cp1252"), "is not utf-8 text (byte 0xf2 on line 2)"),
    ("headers.csv", b"number,kind,id\n1,ADD,2\n", "lacks required column(s) certificate_number, version_kind"),
    ("object.json", json.dumps(GOOD, indent=2).encode(), "holds one JSON object, not rows"),
    ("broken.json", b"[{\"a\": 1},", "not valid JSON"),
])
def test_a_bad_file_is_one_error_naming_the_fix(tmp_path, name, data, expected):
    path = tmp_path / name if data is None else _export(tmp_path, name, data)
    with pytest.raises(clinic.ExportError) as info:
        clinic.load_rows(path)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_other_encodings_by_option_or_bom(tmp_path):
    row = {**GOOD, "doctor": "BS. Hòa"}
    text = ",".join(row) + "\n" + ",".join(row.values()) + "\n"
    [(_, raw, _)] = clinic.load_rows(_export(tmp_path, "cp.csv", text.encode("cp1252")), encoding="cp1252")
    assert raw["doctor"] == "BS. Hòa"
    [(_, raw, _)] = clinic.load_rows(_export(tmp_path, "u16.csv", text.encode("utf-16")))
    assert raw["doctor"] == "BS. Hòa"


def test_a_repeated_row_is_sent_once_and_a_conflicting_one_is_rejected(tmp_path):
    rows = [GOOD, dict(GOOD), {**GOOD, "doctor": "BS. Khác"}]
    publisher = FakePublisher()
    results = clinic.publish_file(_export(tmp_path, "d.json", json.dumps(rows).encode()), publisher)
    assert len(publisher.events) == 1
    assert results[1].line() == "row 2: duplicate of row 1 (00101/GKSKLX/BVBM01/25 ADD): not sent again"
    assert "same certificate number, version and signing time as row 1 but different content" in results[2].reason
