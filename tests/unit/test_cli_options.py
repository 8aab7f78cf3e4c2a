"""One option vocabulary: every command's connection options are declared once (gplx_bus/commands/options.py).

Walks every command of the `gplx-bus` app (click introspection) and fails on a connection option with another
primary name, short flag, environment variable, default or help, and on a command that talks to Kafka or the
registry without the full set.
"""
from __future__ import annotations

import pytest
import typer

from gplx_bus.cli import app
from gplx_bus.commands import options

# canonical declaration -> the old spellings still accepted as extra names (hidden in nothing, but never primary)
CANONICAL = {
    "bootstrap": (options.bootstrap_servers(), ("--server",)),
    "client_config": (options.client_config(), ()),
    "registry_url": (options.registry_url(), ("--url", "--schema-registry-url")),
    "registry_user": (options.registry_user(), ()),
    "prefix": (options.topic_prefix(), ()),
}
KAFKA = {"bootstrap", "client_config"}
REGISTRY = {"registry_url", "registry_user"}
# command path -> which connection options it must have
EXPECTED = {
    "demo": KAFKA | REGISTRY,  # its topics get a fresh prefix of their own
    "topics list": {"prefix"},
    "topics apply": KAFKA | {"prefix"},
    "processor run": KAFKA | REGISTRY | {"prefix"},
    "simulate": KAFKA | REGISTRY | {"prefix"},
    "clinic publish": KAFKA | REGISTRY | {"prefix"},
    "clinic serve": KAFKA | REGISTRY | {"prefix"},
    "clinic keys add": KAFKA | REGISTRY | {"prefix"},
    "clinic keys revoke": KAFKA | REGISTRY | {"prefix"},
    "clinic keys list": KAFKA | REGISTRY | {"prefix"},
    "adapters run": KAFKA | REGISTRY | {"prefix"},
    "subscribe": KAFKA | REGISTRY | {"prefix"},
    "portal sink": KAFKA | REGISTRY | {"prefix"},
    "asyncapi": {"bootstrap", "registry_url", "prefix"},  # names the endpoints in the document, connects to none
    "schemas register": REGISTRY | {"prefix"},
    "schemas check": REGISTRY | {"prefix"},
    "lag": KAFKA | {"prefix"},
    "lag serve": KAFKA | REGISTRY | {"prefix"},
    "bench": KAFKA | REGISTRY,  # private topics under a prefix of its own
    "acls apply": KAFKA | {"prefix"},
    "users add": KAFKA,
    "users rotate": KAFKA,
    "dlq list": KAFKA | REGISTRY | {"prefix"},
    "dlq show": KAFKA | REGISTRY | {"prefix"},
    "dlq replay": KAFKA | REGISTRY | {"prefix"},
    "status show": {"prefix"},  # reads the case store's database (the prefix names its topic's offsets)
    "status serve": {"prefix"},
    "status store run": KAFKA | REGISTRY | {"prefix"},
}


def _commands(command, path: str = ""):
    """(path, command) of every command; typer vendors click, so groups are recognised by their commands."""
    yield path, command
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from _commands(sub, f"{path} {name}".strip())


def _names(info) -> tuple[str, ...]:
    return tuple(info.param_decls)


ALL_COMMANDS = dict(_commands(typer.main.get_command(app)))
KNOWN_NAMES = {n: key for key, (info, aliases) in CANONICAL.items() for n in (*_names(info), *aliases)}
KNOWN_ENVVARS = {info.envvar: key for key, (info, _) in CANONICAL.items()}


def _connection_options(command) -> dict:
    found = {}
    for param in command.params:
        keys = {KNOWN_NAMES[n] for n in param.opts + param.secondary_opts if n in KNOWN_NAMES}
        if param.envvar in KNOWN_ENVVARS:
            keys.add(KNOWN_ENVVARS[param.envvar])
        assert len(keys) <= 1, f"{param.opts} mixes connection options {keys}"
        if keys:
            found[keys.pop()] = param
    return found


@pytest.mark.parametrize("path", sorted(p for p in ALL_COMMANDS if p))
def test_connection_options_are_the_canonical_ones(path):
    for key, param in _connection_options(ALL_COMMANDS[path]).items():
        info, aliases = CANONICAL[key]
        where = f"`gplx-bus {path}` {param.opts}"
        assert param.opts[:len(_names(info))] == list(_names(info)), f"{where}: primary names"
        assert set(param.opts[len(_names(info)):]) <= set(aliases), f"{where}: unknown alias"
        assert (param.envvar, param.default, param.help) == (info.envvar, info.default, info.help), where


def test_every_command_that_connects_has_the_whole_set():
    missing = {path: sorted(want - set(_connection_options(ALL_COMMANDS[path]))) for path, want in EXPECTED.items()}
    assert {p: m for p, m in missing.items() if m} == {}


def test_no_command_with_a_connection_option_is_unaccounted_for():
    having = {path for path, command in ALL_COMMANDS.items() if path and _connection_options(command)}
    assert having <= set(EXPECTED)


def test_short_flag_b_means_bootstrap_everywhere():
    for path, command in ALL_COMMANDS.items():
        for param in command.params:
            if "-b" in param.opts:
                assert "--bootstrap-servers" in param.opts, path
