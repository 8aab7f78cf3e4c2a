"""Every command's --help shows an example, and docs/cli-help.txt is the help of the code as it is: a change of
options is a visible change in review."""
from __future__ import annotations

import difflib

import pytest

from gplx_bus import helpdump

RUNNABLE = {" ".join(path): command for path, command in helpdump.commands()
            if path and (not getattr(command, "commands", None) or getattr(command, "invoke_without_command", False))}


def test_every_runnable_command_is_walked():
    assert {"processor run", "local up", "lag", "lag serve", "dlq replay", "simulate"} <= set(RUNNABLE)


@pytest.mark.parametrize("path", sorted(RUNNABLE))
def test_every_command_has_an_example_of_itself(path):
    assert f"Example: gplx-bus {path}" in (RUNNABLE[path].help or ""), (
        f"`gplx-bus {path}` has no example: add 'Example: gplx-bus {path} ...' as the last paragraph of its "
        f"docstring")


def test_the_checked_in_help_is_current():
    current = helpdump.dump()
    checked_in = helpdump.HELP_FILE.read_text(encoding="utf-8") if helpdump.HELP_FILE.exists() else ""
    if current != checked_in:
        diff = "".join(difflib.unified_diff(checked_in.splitlines(True), current.splitlines(True),
                                            "docs/cli-help.txt (checked in)", "gplx-bus --help (now)"))
        pytest.fail(f"the CLI's help changed; review the diff and refresh it with `{helpdump.REFRESH}`:\n{diff}")
