"""Every `gplx-bus ... --help` in one text, checked in as docs/cli-help.txt: a change of options is a visible change.

    python -m gplx_bus.helpdump > docs/cli-help.txt

tests/unit/test_cli_help.py regenerates it and fails with the diff when the checked-in file is stale. Rendered at
100 columns without colour, whatever the terminal, so the file is the same on every machine.
"""
from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from gplx_bus.cli import app

HELP_FILE = Path(__file__).parents[1] / "docs" / "cli-help.txt"
REFRESH = "python -m gplx_bus.helpdump > docs/cli-help.txt"
_ENV = {"COLUMNS": "100", "TERMINAL_WIDTH": "100", "NO_COLOR": "1", "TERM": "dumb", "FORCE_COLOR": None,
        "_TYPER_FORCE_DISABLE_TERMINAL": "1"}


def commands(command=None, path: tuple[str, ...] = ()):
    """(path, command) of the app and every group and command under it, in --help order (typer vendors click:
    a group is what has sub-commands)."""
    command = command or typer.main.get_command(app)
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from commands(sub, (*path, name))


def help_text(path: tuple[str, ...]) -> str:
    result = CliRunner(env=_ENV).invoke(app, [*path, "--help"], prog_name="gplx-bus")
    if result.exit_code != 0:
        raise RuntimeError(f"gplx-bus {' '.join(path)} --help failed: {result.output}")
    return "".join(line.rstrip() + "\n" for line in result.output.splitlines())  # rich pads every line


def dump() -> str:
    return "".join(f"$ {' '.join(('gplx-bus', *path, '--help'))}\n{help_text(path)}\n" for path, _ in commands())


if __name__ == "__main__":
    print(dump(), end="")
