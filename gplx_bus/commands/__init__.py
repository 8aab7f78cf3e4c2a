"""Sub-commands of `gplx-bus`, one module each, registered here in the order `--help` shows them."""
from __future__ import annotations

import importlib

import typer

# (module, command name, help) - a module exposes `app` (a typer.Typer group) or `command` (a function).
_COMMANDS = [
    ("demo", "demo", None),
    ("local", "local", "Start, stop and inspect the local Kafka broker and schema registry."),
    ("topics", "topics", "The topic catalogue: list it, apply it to the cluster."),
    ("acls", "acls", "The catalogue's ACLs: apply them to a cluster with an authorizer."),
    ("users", "users", "SCRAM users of a secured cluster: add them, rotate their passwords."),
    ("processor", "processor", "The case processor (faust): assemble, decide and route renewal cases."),
    ("simulate", "simulate", None),
    ("clinic", "clinic", "Clinics: publish health certificates (straight or through the HTTPS gateway), keys."),
    ("adapters", "adapters", "Identity, police and payment adapters that answer the processor's requests."),
    ("subscribe", "subscribe", None),
    ("portal", "portal", "The national portal's side: issuance sink and a local stand-in portal."),
    ("asyncapi", "asyncapi", None),
    ("bench", "bench", None),
    ("schemas", "schemas", "The Avro contracts: register them, check their compatibility."),
    ("lag", "lag", "Consumer lag for SREs: offsets, seconds and status per group; Prometheus exporter.\n\n"
                   "Example: gplx-bus lag --watch --group gplx-case-processor"),
    ("status", "status", "Where is a renewal? The case store (cases.events in a database) and its HTTP API.\n\n"
                         "Example: gplx-bus status show APP-000123 (also: status serve, status store run)"),
    ("dlq", "dlq", "Dead letters for SREs: list, show with the original decoded, replay once after a fix."),
]


def register(app: typer.Typer) -> None:
    for module_name, name, help_text in _COMMANDS:
        module = importlib.import_module(f"gplx_bus.commands.{module_name}")
        if hasattr(module, "app"):
            app.add_typer(module.app, name=name, help=help_text)
        else:
            app.command(name=name)(module.command)
