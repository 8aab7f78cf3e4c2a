"""Offline schema-evolution check: can a reader schema read data written with a writer schema?

Why our own checker: fastavro resolves schemas while reading but offers no "is this change compatible?" API, and
the registry is not always at hand (CI, a developer's laptop). This follows the Avro specification's resolution
rules and names the field that breaks them, e.g.
    HealthCertificate: field 'x' added without a default — incompatible (BACKWARD)

Compatibility level of every subject: FULL_TRANSITIVE (registry) / FULL against the last release (offline).
Why FULL and not BACKWARD: the consumers (34 provinces' tools, the portal, the printing sink) upgrade on their own
schedule, so an *old* reader must read *new* data (FORWARD), and the case processor replays a year of events, so a
*new* reader must read *old* data (BACKWARD). FULL therefore means: only add or remove fields that have a default,
only add enum symbols (every enum has a default symbol), never narrow a type. TRANSITIVE on the registry because
a replay meets every version ever written, not only the previous one.
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from schemas import loader

LEVEL = "FULL_TRANSITIVE"  # what `schemas register` sets on every subject

_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
_PROMOTIONS = {("int", "long"), ("int", "float"), ("int", "double"), ("long", "float"), ("long", "double"),
               ("float", "double"), ("string", "bytes"), ("bytes", "string")}  # (writer, reader)


def _index(schema: Any, namespace: str | None, names: dict[str, dict]) -> None:
    """Collect every named type definition by full name."""
    if isinstance(schema, list):
        for branch in schema:
            _index(branch, namespace, names)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in ("record", "error", "enum", "fixed"):
            full = loader.fullname(schema, namespace)
            names[full] = schema
            namespace = full.rsplit(".", 1)[0] if "." in full else None
            for f in schema.get("fields", []):
                _index(f["type"], namespace, names)
        elif kind == "array":
            _index(schema["items"], namespace, names)
        elif kind == "map":
            _index(schema["values"], namespace, names)
        elif isinstance(kind, (dict, list)):
            _index(kind, namespace, names)


class _Side:
    """One schema (reader or writer) with its named types, so references can be followed."""

    def __init__(self, schema: Any) -> None:
        self.names: dict[str, dict] = {}
        _index(schema, None, self.names)
        self.root = schema

    def resolve(self, t: Any, namespace: str | None) -> tuple[Any, str | None]:
        """Follow a named reference; unwrap {"type": "int"} style primitives (keeping logical types)."""
        if isinstance(t, str) and t not in _PRIMITIVES:
            full = t if "." in t or namespace is None else f"{namespace}.{t}"
            t = self.names.get(full) or self.names.get(t)
            if t is None:
                raise ValueError(f"unknown named type {full}")
        if isinstance(t, dict) and t.get("type") in _PRIMITIVES and "logicalType" not in t:
            t = t["type"]
        return t, namespace


def _kind(t: Any) -> str:
    if isinstance(t, str):
        return t
    if isinstance(t, list):
        return "union"
    kind = t["type"]
    return kind if isinstance(kind, str) else _kind(kind)


def _describe(t: Any) -> str:
    if isinstance(t, str):
        return t
    if isinstance(t, list):
        return "[" + ", ".join(_describe(b) for b in t) + "]"
    if "logicalType" in t:
        return f"{t['type']}/{t['logicalType']}"
    return t.get("name") or t["type"]


def _full(t: dict, namespace: str | None) -> str:
    return loader.fullname(t, namespace)


def incompatibilities(reader: Any, writer: Any, *,
                      missing_field: str = "field '{path}' added without a default") -> list[str]:
    """Problems a reader schema has reading data written with the writer schema (empty list: compatible).

    Fields the writer has and the reader lacks are fine (the reader skips them). A reader field the writer lacks
    needs a default; `missing_field` words that problem for the direction checked (in a FORWARD check the
    reader is the old schema, so the field was *removed* by the new one).
    """
    r_side, w_side = _Side(reader), _Side(writer)
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()

    def check(r: Any, r_ns: str | None, w: Any, w_ns: str | None, path: str) -> None:
        r, r_ns = r_side.resolve(r, r_ns)
        w, w_ns = w_side.resolve(w, w_ns)
        rk, wk = _kind(r), _kind(w)
        where = f"field '{path}'" if path else "the record"
        if wk == "union":
            for branch in w:
                if not _readable(r, r_ns, branch, w_ns):
                    problems.append(f"{where}: writer type {_describe(branch)} cannot be read as {_describe(r)}")
            return
        if rk == "union":
            if not any(_readable(b, r_ns, w, w_ns) for b in r):
                problems.append(f"{where}: writer type {_describe(w)} fits no branch of {_describe(r)}")
            else:  # recurse into the first matching branch for field-level detail
                branch = next(b for b in r if _readable(b, r_ns, w, w_ns))
                check(branch, r_ns, w, w_ns, path)
            return
        if rk != wk and (wk, rk) not in _PROMOTIONS:
            problems.append(f"{where}: type {_describe(w)} cannot be read as {_describe(r)}"
                            + (" (narrowed)" if (rk, wk) in _PROMOTIONS else ""))
            return
        r_logical = r.get("logicalType") if isinstance(r, dict) else None
        w_logical = w.get("logicalType") if isinstance(w, dict) else None
        if r_logical != w_logical:
            problems.append(f"{where}: logical type changed from {w_logical} to {r_logical}")
        if rk == "record":
            r_name, w_name = _full(r, r_ns), _full(w, w_ns)
            if r_name != w_name and w_name not in [_alias(a, r_ns) for a in r.get("aliases", [])]:
                problems.append(f"{where}: record name changed from {w_name} to {r_name}")
                return
            if (r_name, w_name) in seen:
                return
            seen.add((r_name, w_name))
            r_ns2, w_ns2 = r_name.rsplit(".", 1)[0], w_name.rsplit(".", 1)[0]
            w_fields = {f["name"]: f for f in w["fields"]}
            for rf in r["fields"]:
                sub = f"{path}.{rf['name']}" if path else rf["name"]
                wf = w_fields.get(rf["name"]) or next(
                    (w_fields[a] for a in rf.get("aliases", []) if a in w_fields), None)
                if wf is None:
                    if "default" not in rf:
                        problems.append(missing_field.format(path=sub))
                    continue
                check(rf["type"], r_ns2, wf["type"], w_ns2, sub)
        elif rk == "enum":
            missing = [s for s in w["symbols"] if s not in r["symbols"]]
            if missing and r.get("default") is None:
                problems.append(f"{where}: enum {r['name']} lacks symbols {missing} and has no default")
        elif rk == "array":
            check(r["items"], r_ns, w["items"], w_ns, path + "[]")
        elif rk == "map":
            check(r["values"], r_ns, w["values"], w_ns, path + "{}")
        elif rk == "fixed" and r.get("size") != w.get("size"):
            problems.append(f"{where}: fixed size changed from {w.get('size')} to {r.get('size')}")

    def _alias(a: str, ns: str | None) -> str:
        return a if "." in a or not ns else f"{ns}.{a}"

    def _readable(r: Any, r_ns: str | None, w: Any, w_ns: str | None) -> bool:
        r, r_ns = r_side.resolve(r, r_ns)
        w, w_ns = w_side.resolve(w, w_ns)
        rk, wk = _kind(r), _kind(w)
        if rk == "union":
            return any(_readable(b, r_ns, w, w_ns) for b in r)
        if rk != wk and (wk, rk) not in _PROMOTIONS:
            return False
        if rk in ("record", "enum", "fixed") and _full(r, r_ns) != _full(w, w_ns):
            return any(_alias(a, r_ns) == _full(w, w_ns) for a in r.get("aliases", []))
        return True

    check(reader, None, writer, None, "")
    # A record's "field" message reads better with the record's short name in front; callers add it.
    return problems


_REMOVED = "field '{path}' removed, and the old schema has no default for it"


def check_compatible(new: Any, old: Any, level: str = "FULL") -> list[str]:
    """Messages for every way `new` breaks `level` against `old`; empty when compatible.

    BACKWARD: new readers read old data. FORWARD: old readers read new data. FULL: both.
    """
    level = level.upper().replace("_TRANSITIVE", "")
    name = new.get("name", "schema") if isinstance(new, dict) else "schema"
    messages = []
    if level in ("BACKWARD", "FULL"):
        messages += [f"{name}: {m} — incompatible (BACKWARD)"
                     for m in incompatibilities(new, old)]
    if level in ("FORWARD", "FULL"):
        messages += [f"{name}: {m} — incompatible (FORWARD)"
                     for m in incompatibilities(old, new, missing_field=_REMOVED)]
    if level not in ("BACKWARD", "FORWARD", "FULL", "NONE"):
        raise ValueError(f"unknown compatibility level {level}")
    return messages


# ---- released versions kept in the repo ----

def released_dir() -> Path:
    return Path(str(resources.files("schemas").joinpath("released")))


def released_schema(name: str) -> dict | None:
    path = released_dir() / f"{loader.short_name(name)}.avsc"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def check_released(level: str = "FULL") -> dict[str, list[str]]:
    """Every event's current schema against its last released version: {full name: messages}.

    An event never released has nothing to break and maps to [].
    """
    out = {}
    for name in loader.event_names():
        old = released_schema(name)
        out[name] = [] if old is None else check_compatible(loader.event_schema(name), old, level)
    return out


def release(names: list[str] | None = None) -> list[Path]:
    """Write the current self-contained schemas as the released versions (run when a version ships)."""
    released_dir().mkdir(exist_ok=True)
    paths = []
    for name in names or loader.event_names():
        path = released_dir() / f"{loader.short_name(name)}.avsc"
        path.write_text(json.dumps(loader.event_schema(name), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        paths.append(path)
    return paths
