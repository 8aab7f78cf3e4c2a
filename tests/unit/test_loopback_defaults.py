"""Every HTTP server a user can start listens on 127.0.0.1 unless told otherwise (README, Security: Notes)."""
from __future__ import annotations

import inspect

import pytest
import typer

from consumers.casestore.server import ApiServer
from consumers.lag.exporter import LagExporter
from consumers.portal import StandinPortal
from gplx_bus.cli import app
from producers.gateway.http import GatewayServer
from tests.network import accepts, non_loopback_addresses

LISTEN_OPTIONS = {"host", "addr", "bind", "listen"}


def _commands(command, path: str = ""):
    """(path, command) of a command and every subcommand (typer's own click: duck-typed)."""
    yield path, command
    for name, sub in (getattr(command, "commands", None) or {}).items():
        yield from _commands(sub, f"{path} {name}".strip())


def test_every_listen_option_of_the_cli_defaults_to_loopback():
    found = {}
    for path, command in _commands(typer.main.get_command(app)):
        for param in command.params:
            if param.name in LISTEN_OPTIONS:
                found[path] = param.default
    # a new server must be added here, and checked
    assert set(found) == {"lag serve", "portal standin", "status serve", "clinic serve"}, found
    assert set(found.values()) == {"127.0.0.1"}


def test_the_servers_classes_default_to_loopback():
    assert inspect.signature(LagExporter).parameters["addr"].default == "127.0.0.1"
    assert inspect.signature(StandinPortal).parameters["host"].default == "127.0.0.1"
    assert inspect.signature(ApiServer).parameters["host"].default == "127.0.0.1"
    assert inspect.signature(GatewayServer).parameters["host"].default == "127.0.0.1"


def test_the_standin_portal_is_not_reachable_from_another_address():
    addresses = non_loopback_addresses()
    if not addresses:
        pytest.skip("this machine has no non-loopback address")
    with StandinPortal() as portal:
        assert accepts("127.0.0.1", portal.port)
        assert not any(accepts(a, portal.port) for a in addresses)
    with StandinPortal(host="0.0.0.0") as wide:  # the check can fail: bound wide, it is reachable
        assert accepts(addresses[0], wide.port)
