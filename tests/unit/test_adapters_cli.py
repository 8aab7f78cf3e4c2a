"""`gplx-bus adapters run` runs any subset of the three adapters (one process per principal on a secured cluster)."""
from __future__ import annotations

from typer.testing import CliRunner

from gplx_bus.cli import app


def test_adapters_run_refuses_to_run_nothing():
    result = CliRunner().invoke(app, ["adapters", "run", "--no-identity", "--no-police", "--no-payment",
                                      "-b", "127.0.0.1:1"])
    assert result.exit_code == 2
    assert "nothing to run" in result.output


def test_adapters_run_has_a_switch_per_adapter():
    result = CliRunner().invoke(app, ["adapters", "run", "--help"], terminal_width=200)
    assert result.exit_code == 0
    for switch in ("--no-identity", "--no-police", "--no-payment"):
        assert switch in result.output
