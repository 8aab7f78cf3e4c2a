"""Load the .avsc contracts and resolve references between files.

Shared named types (`vn.gplx.common.ReasonCode`, `Source`, `DeliveryMethod`) are defined once, in
`avro/common/`, and referenced by full name from the event files. The registry and other languages' tools need a
*self-contained* schema per event, so `event_schema()` inlines each shared type at its first use (later uses stay
references, as Avro requires). That inlined form is what gets registered, parsed by fastavro, and released.

Only files outside `avro/common/` are events (one event per file).
"""
from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any

from schemas.errors import SchemaError

_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
_COMMON_DIR = "common"


def _avro_files() -> list[tuple[str, str]]:
    """(area, file text) for every .avsc under schemas/avro, sorted for a stable order."""
    root = resources.files("schemas").joinpath("avro")
    out = []
    for area in sorted(root.iterdir(), key=lambda p: p.name):
        if not area.is_dir():
            continue
        for f in sorted(area.iterdir(), key=lambda p: p.name):
            if f.name.endswith(".avsc"):
                out.append((area.name, f.read_text(encoding="utf-8")))
    return out


def fullname(schema: dict[str, Any], enclosing_namespace: str | None = None) -> str:
    name = schema["name"]
    if "." in name:
        return name
    ns = schema.get("namespace", enclosing_namespace)
    return f"{ns}.{name}" if ns else name


@cache
def _load() -> tuple[dict[str, dict], list[str]]:
    """Named types defined at the top of a file by full name, and the event full names in file order."""
    named: dict[str, dict] = {}
    events: list[str] = []
    for area, text in _avro_files():
        try:
            schema = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SchemaError(f"schemas/avro/{area}: malformed JSON: {exc}") from None
        name = fullname(schema)
        if name in named:
            raise SchemaError(f"schemas/avro/{area}: type {name} is defined twice")
        named[name] = schema
        if area != _COMMON_DIR:
            if schema.get("type") != "record":
                raise SchemaError(f"schemas/avro/{area}: {name} must be a record to be an event")
            events.append(name)
    return named, events


def event_names() -> list[str]:
    """Full names of every event, e.g. 'vn.gplx.clinics.HealthCertificate'."""
    return list(_load()[1])


def shared_type(name: str) -> dict[str, Any]:
    """A copy of a type defined in its own file (e.g. 'vn.gplx.common.ReasonCode')."""
    return copy.deepcopy(_load()[0][name])


@cache
def _event_schema(name: str) -> str:
    named, events = _load()
    if name not in events:
        raise SchemaError(f"no event schema named {name}; known: {', '.join(events)}")
    defined: set[str] = set()

    def expand(node: Any, namespace: str | None) -> Any:
        if isinstance(node, str):
            if node in _PRIMITIVES:
                return node
            ref = node if "." in node else f"{namespace}.{node}"
            if ref in defined:
                return ref
            if ref not in named:
                raise SchemaError(f"{name}: reference to unknown type {ref}")
            return expand(copy.deepcopy(named[ref]), namespace)
        if isinstance(node, list):  # union
            return [expand(branch, namespace) for branch in node]
        kind = node.get("type")
        if kind in ("record", "enum", "fixed", "error"):
            full = fullname(node, namespace)
            if full in defined:
                raise SchemaError(f"{name}: type {full} is defined twice")
            defined.add(full)
            node = dict(node)
            # Make the namespace explicit: an inlined shared type must not inherit the event's namespace.
            node["name"], node["namespace"] = full.rsplit(".", 1)[1], full.rsplit(".", 1)[0]
            if kind in ("record", "error"):
                node["fields"] = [dict(f, type=expand(f["type"], node["namespace"])) for f in node["fields"]]
            return node
        if kind == "array":
            return dict(node, items=expand(node["items"], namespace))
        if kind == "map":
            return dict(node, values=expand(node["values"], namespace))
        if isinstance(kind, (dict, list)) or (isinstance(kind, str) and kind not in _PRIMITIVES):
            return dict(node, type=expand(kind, namespace))
        return node  # primitive, possibly with a logicalType

    return json.dumps(expand(named[name], None), ensure_ascii=False, separators=(",", ":"))


def event_schema(name: str) -> dict[str, Any]:
    """The self-contained schema (shared types inlined) of one event, as a fresh dict."""
    return json.loads(_event_schema(name))


def event_schema_text(name: str) -> str:
    """The same, as the compact JSON text registered in the schema registry (stable byte for byte)."""
    return _event_schema(name)


def short_name(name: str) -> str:
    return name.rsplit(".", 1)[-1]
