"""Issue 13: the citizen state's refactor changes no output. A seeded simulated day through the assembler gives,
line for line, the case events recorded before the refactor (see tests/recorded_day.py)."""
from __future__ import annotations

import json

from tests.recorded_day import STATES, probe, recorded_lines, run_day


def test_the_recorded_day_gives_byte_identical_outputs():
    lines, _ = run_day()
    recorded = recorded_lines()
    first_difference = next((i for i, (a, b) in enumerate(zip(lines, recorded)) if a != b), None)
    assert first_difference is None, (
        f"output {first_difference} differs:\n now: {lines[first_difference]}\n was: {recorded[first_difference]}")
    assert len(lines) == len(recorded) > 900


def test_states_stored_by_earlier_code_load_and_act_as_they_did():
    """The changelog of a running worker is read by the next version: each stored state (written by the code
    before issue 13) does next exactly what it did then: replays, a late payment, a month passing."""
    stored = json.loads(STATES.read_text())
    assert len(stored) >= 12
    for label, sample in stored.items():
        assert probe(sample["cccd"], sample["state"]) == sample["next"], label
