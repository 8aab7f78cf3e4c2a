"""The case store without Kafka: rows from events, once per event id, offsets in the same transaction; the status
API over real HTTP (uvicorn on a free loopback port) with its keys; the checked-in OpenAPI document."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import httpx
import pytest

from consumers.casestore import model
from consumers.casestore.api import create_app
from consumers.casestore.auth import Keys, add_key
from consumers.casestore.db import DatabaseError, database
from consumers.casestore.server import ApiServer
from consumers.casestore.store import CaseStore, Record
from consumers.casestore.synthetic import case_events

OPENAPI = Path(__file__).resolve().parents[2] / "schemas" / "openapi" / "status.json"


def records(events, partition=0, start=0):
    return [Record(partition, start + i, kind, record) for i, (kind, record) in enumerate(events)]


@pytest.fixture
def store(tmp_path):
    s = CaseStore(database(f"sqlite:///{tmp_path}/cases.db"), "cases.events")
    yield s
    s.close()


def test_database_file_is_private_and_urls_are_checked(tmp_path, store):
    assert stat.S_IMODE(os.stat(tmp_path / "cases.db").st_mode) == 0o600
    with pytest.raises(DatabaseError, match="passfile"):
        database("postgresql://gplx:secret@127.0.0.1:5432/cases")
    with pytest.raises(DatabaseError, match="unsupported"):
        database("mysql://x")


def test_rows_follow_the_events_and_duplicates_change_nothing(store):
    events = case_events(300)
    store.act(records(events[:400]))
    again = store.act(records(events[350:], start=350))  # 50 re-read (as after a crash before a Kafka commit)
    assert again.duplicates == 50 and again.applied == len(events) - 400
    assert store.offsets() == {0: len(events)}
    counts = {}
    for _, r in events:
        counts[r["case_id"]] = counts.get(r["case_id"], 0) + 1
    assert store.event_counts() == counts
    assert {r.case_id: r.events for r in store.all_rows()} == counts
    for kind, r in events:
        if kind in ("CaseApproved", "CaseRejected", "CaseEscalated"):
            row = next(x for x in store.all_rows() if x.case_id == r["case_id"])
            assert row.state == model.STATE_OF[kind] and row.reasons == sorted(r.get("reasons") or [])


def test_a_late_event_never_moves_a_case_back(store):
    by_case = {}
    for kind, record in case_events(40):
        by_case.setdefault(record["case_id"], []).append((kind, record))
    (k1, opened), (k2, awaiting), (k3, approved) = next(
        e for e in by_case.values() if [k for k, _ in e] == ["CaseOpened", "CaseAwaiting", "CaseApproved"])
    assert (k1, k2, k3) == ("CaseOpened", "CaseAwaiting", "CaseApproved")
    store.act(records([(k1, opened), (k3, approved), (k2, awaiting)]))
    row = store.by_application(opened["application_id"])
    assert row.state == "APPROVED" and row.missing == [] and row.events == 3


def test_a_failed_batch_leaves_neither_rows_nor_offsets(store, monkeypatch):
    events = case_events(50)
    store.act(records(events[:20]))
    before = store.checksum()

    def boom(*a):
        raise RuntimeError("crash inside the transaction")

    monkeypatch.setattr(model, "apply", boom)
    with pytest.raises(RuntimeError):
        store.act(records(events[20:], start=20))
    assert store.checksum() == before and store.offsets() == {0: 20}


def test_the_same_events_in_other_batches_give_the_identical_table(tmp_path, store):
    events = case_events(500)
    store.act(records(events))
    other = CaseStore(database(f"sqlite:///{tmp_path}/rebuilt.db"), "cases.events")
    for i in range(0, len(events), 37):
        other.act(records(events[i:i + 37], start=i))
    assert other.checksum() == store.checksum()
    other.close()


def test_purge_keeps_the_audit_retention_only(store):
    events = case_events(10)
    store.act(records(events))
    newest = max(r.updated_at for r in store.all_rows())
    assert store.purge(newest) == 9 and store.count() == 1
    assert set(store.event_counts()) == {r.case_id for r in store.all_rows()}


# --- the API over real HTTP --------------------------------------------------------------------------------------
@pytest.fixture
def api(tmp_path, store):
    store.act(records(case_events(300)))
    keys_file = tmp_path / "keys.json"
    tokens = {p: add_key(keys_file, p) for p in ("helpdesk", "portal", "province-01", "province-79")}
    assert stat.S_IMODE(os.stat(keys_file).st_mode) == 0o600
    assert not any(t.split(".")[2] in keys_file.read_text() for t in tokens.values())  # only hashes kept
    keys = Keys.load(keys_file)
    server = ApiServer(store.db, "", keys).start()
    client = httpx.Client(base_url=server.url, timeout=10)
    yield client, tokens, keys, store
    client.close()
    server.stop()


def auth(token):
    return {"Authorization": f"Bearer {token}"}


def test_application_by_id_needs_a_key_and_says_what_next(api):
    client, tokens, _, store = api
    row = next(r for r in store.all_rows() if r.state == "AWAITING" and r.province == "01")
    assert client.get(f"/v1/applications/{row.application_id}").status_code == 401
    assert client.get(f"/v1/applications/{row.application_id}", headers=auth("gplx.x.y")).status_code == 401
    answer = client.get(f"/v1/applications/{row.application_id}", headers=auth(tokens["helpdesk"])).json()
    assert answer["state"] == "AWAITING" and answer["missing"] == ["EXAM_MISSING", "PAYMENT_MISSING"]
    assert answer["facts"]["certificate"] == "missing" and answer["facts"]["identity"] == "present"
    assert "Khám sức khỏe" in answer["next_step"]["vi"] and "health check" in answer["next_step"]["en"]
    assert answer["deadline"].endswith("Z") and "cccd" not in answer
    assert client.get("/v1/applications/nope", headers=auth(tokens["helpdesk"])).status_code == 404


def test_a_province_sees_its_own_province_only(api):
    client, tokens, _, store = api
    other = next(r for r in store.all_rows() if r.province == "79")
    denied = client.get("/v1/provinces/79/cases", headers=auth(tokens["province-01"]))
    assert denied.status_code == 403 and "error" in denied.json()
    assert client.get(f"/v1/applications/{other.application_id}",
                      headers=auth(tokens["province-01"])).status_code == 403
    assert client.get("/v1/funnel?province=79", headers=auth(tokens["province-01"])).status_code == 403
    assert client.get("/v1/provinces/79/cases", headers=auth(tokens["province-79"])).status_code == 200


def test_paging_returns_every_case_once_in_order(api):
    client, tokens, _, store = api
    want = sorted((r.updated_at, r.case_id) for r in store.all_rows() if r.province == "01")
    seen, cursor = [], None
    while True:
        page = client.get("/v1/provinces/01/cases", headers=auth(tokens["province-01"]),
                          params={"limit": 17, **({"cursor": cursor} if cursor else {})}).json()
        seen += [(c["case_id"]) for c in page["cases"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [c for _, c in want]
    since = client.get("/v1/provinces/01/cases", headers=auth(tokens["helpdesk"]),
                       params={"since": "2025-09-01T01:30:00Z", "state": "REJECTED", "limit": 1000}).json()
    assert since["cases"] and all(c["state"] == "REJECTED" and c["updated_at"] >= "2025-09-01T01:30"
                                  for c in since["cases"])
    bad = client.get("/v1/provinces/01/cases", headers=auth(tokens["helpdesk"]), params={"since": "yesterday"})
    assert bad.status_code == 400 and "ISO 8601" in bad.json()["error"]


def test_a_cccd_query_needs_the_citizens_authorization(api):
    client, tokens, keys, store = api
    row = store.all_rows()[0]
    url = f"/v1/citizens/{row.cccd}/applications"
    assert client.get(url).status_code == 401
    assert client.get(url, headers=auth(tokens["portal"])).status_code == 403
    other = keys.citizen_token("001000000000")
    assert client.get(url, headers={**auth(tokens["portal"]), "X-Citizen-Token": other}).status_code == 403
    expired = keys.citizen_token(row.cccd, ttl_s=-1)
    assert client.get(url, headers={**auth(tokens["portal"]), "X-Citizen-Token": expired}).status_code == 403
    good = {"X-Citizen-Token": keys.citizen_token(row.cccd)}
    assert client.get(url, headers={**auth(tokens["province-01"]), **good}).status_code == 403
    answer = client.get(url, headers={**auth(tokens["portal"]), **good}).json()
    assert row.case_id in [a["case_id"] for a in answer["applications"]]


def test_funnel_counts_every_case(api):
    client, tokens, _, store = api
    funnel = client.get("/v1/funnel", headers=auth(tokens["helpdesk"])).json()
    assert funnel["stages"]["applications"] == store.count()
    assert funnel["stages"]["approved"] == funnel["outcomes"]["APPROVED"]
    own = client.get("/v1/funnel", headers=auth(tokens["province-01"])).json()
    assert own["province"] == "01" and own["stages"]["applications"] < store.count()


def test_the_openapi_document_is_checked_in(tmp_path):
    keys_file = tmp_path / "k.json"
    add_key(keys_file, "helpdesk")
    app = create_app(database(f"sqlite:///{tmp_path}/x.db"), "cases.events", Keys.load(keys_file))
    generated = json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"
    assert OPENAPI.read_text() == generated, "refresh with: python -m consumers.casestore.openapi > " \
                                             "schemas/openapi/status.json"


def test_status_show_on_the_command_line(tmp_path, store):
    from typer.testing import CliRunner

    from gplx_bus.cli import app

    store.act(records(case_events(20)))
    row = next(r for r in store.all_rows() if r.state == "REJECTED")
    url = f"sqlite:///{tmp_path}/cases.db"
    shown = CliRunner().invoke(app, ["status", "show", row.application_id, "--database", url])
    assert shown.exit_code == 0 and "REJECTED" in shown.output and "PHONE_NOT_TIED" in shown.output
    assert row.cccd not in shown.output
    missing = CliRunner().invoke(app, ["status", "show", "APP-none", "--database", url])
    assert missing.exit_code == 1
    refused = CliRunner().invoke(app, ["status", "show", "X", "--database", "postgresql://u:pw@127.0.0.1:1/db"])
    assert refused.exit_code == 2 and "passfile" in refused.output
