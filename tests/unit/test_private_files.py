"""Files holding personal data are created 0600, whatever the umask; a logged exception leaves its message out."""
from __future__ import annotations

import json
import os
import stat

import pytest
from typer.testing import CliRunner

from producers import simulator as sim
from producers.adapters import clinic
from producers.adapters.localdb import write_records
from schemas.privacy import failure_summary, open_private, write_private
from tests.unit.test_producers_clinic import SAMPLE, FakePublisher


@pytest.fixture(autouse=True)
def permissive_umask():
    """umask 000: a file opened the ordinary way would come out 0666, so only code that asks for 0600 passes."""
    old = os.umask(0)
    yield
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_open_private_creates_0600_and_narrows_an_existing_file(tmp_path):
    with open_private(tmp_path / "new.txt") as out:
        out.write("x")
    assert mode(tmp_path / "new.txt") == 0o600
    wide = tmp_path / "wide.txt"
    wide.write_text("a\n")
    wide.chmod(0o644)
    with open_private(wide, "a") as out:
        out.write("b\n")
    assert mode(wide) == 0o600 and wide.read_text() == "a\nb\n"
    write_private(wide, "c")
    assert mode(wide) == 0o600 and wide.read_text() == "c"
    (tmp_path / "plain.txt").write_text("")
    assert mode(tmp_path / "plain.txt") == 0o666  # an ordinary file comes out wide here: these tests can fail


def test_the_simulators_databases_and_ledger_are_0600(tmp_path):
    plan = sim.make_plan("01", 20, seed=3)
    paths = sim.write_databases(plan, tmp_path / "data")
    assert set(paths) == {"identity", "police", "payments"}
    for path in paths.values():
        assert path.stat().st_size > 0 and mode(path) == 0o600, path
    write_records(paths["identity"], plan.identity_records[:1])  # a rewrite (merge) stays private
    assert mode(paths["identity"]) == 0o600


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_clinic_rejects_are_0600(tmp_path, fmt):
    path = tmp_path / "export.csv"
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    lines.insert(2, lines[1].replace("001085012345", "001085"))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    results = clinic.publish_file(path, FakePublisher())
    rejects = tmp_path / f"rejects.{fmt}"
    assert clinic.write_rejects(rejects, results, fmt) == 1
    assert mode(rejects) == 0o600


def test_simulate_expected_file_and_databases_are_0600(tmp_path):
    from gplx_bus.cli import app

    expected, data = tmp_path / "expected.jsonl", tmp_path / "data"
    result = CliRunner().invoke(app, ["simulate", "--applications", "5", "--dry-run", "--data-dir", str(data),
                                      "--expected", str(expected)])
    assert result.exit_code == 0, result.output
    assert len(expected.read_text().splitlines()) == 5 and "cccd" in json.loads(expected.read_text().split("\n")[0])
    assert mode(expected) == 0o600
    assert sorted(p.name for p in data.iterdir()) == ["identity.jsonl", "payments.jsonl", "police.jsonl"]
    assert all(mode(p) == 0o600 for p in data.iterdir())


def test_failure_summary_names_the_bug_not_the_input():
    def lookup(records, cccd):
        return records[cccd]

    try:
        lookup({}, "001085012345")
    except KeyError as exc:
        summary = failure_summary(exc)
    assert summary.startswith("KeyError at test_private_files.py:") and " in lookup <- " in summary
    assert "001085012345" not in summary
