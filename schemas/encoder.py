"""Avro binary encoding of a validated event model, compiled once per schema: the producers' hot path.

Why not fastavro here: for an event model, fastavro needs the model dumped to a dict (pydantic), its timestamps and
dates converted (`schemas.logical`), then interprets the schema for every value (its union branch is picked by
validating the value against each branch). That was ~25 µs of the producer SDK's per-record cost, more than a
third of kafka-python's own. A validated model already holds values of the schema's types, so the writer here reads
its fields directly with one small function per field, made once per schema: ~3x cheaper, the same bytes (the
property test in tests/unit/test_schemas_serde.py compares them with the Apache avro package's for every event type;
tests/unit/test_encoder.py with fastavro's).

Only for validated models (`AvroSerializer.__call__`); dicts of unknown provenance keep going through fastavro
(`serialize_dict`), which checks every value. Schemas with a union other than ["null", T] (none today) get no
compiled writer: `compile_writer` returns None and the caller keeps fastavro.
"""
from __future__ import annotations

import datetime as dt
import enum
import struct
from collections.abc import Callable
from typing import Any

from schemas import loader

Write = Callable[[bytearray, Any], None]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_ONE_MS = dt.timedelta(milliseconds=1)
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_DOUBLE = struct.Struct("<d").pack
_FLOAT = struct.Struct("<f").pack
_SMALL = [bytes([n]) for n in range(0x80)]  # one-byte varints


class Unsupported(Exception):
    """A schema construct the compiled writer does not handle (the caller falls back to fastavro)."""


def _varint(n: int) -> bytes:
    """An unsigned varint (n >= 0, already zig-zagged)."""
    if n < 0x80:
        return _SMALL[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_ZIGZAG = [_varint(n << 1) for n in range(4096)]  # small non-negative ints (lengths, counts, most ints), made once


def _long(out: bytearray, n: int) -> None:
    if 0 <= n < 4096:
        out += _ZIGZAG[n]
        return
    n = (n << 1) ^ (n >> 63)  # zig-zag, then 7 bits a byte, low first (straight into `out`: timestamps take 6)
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _string(out: bytearray, value: str) -> None:
    data = value.encode()
    n = len(data)
    out += _ZIGZAG[n] if n < 4096 else _varint(n << 1)
    out += data


def _bytes(out: bytearray, value: bytes) -> None:
    n = len(value)
    out += _ZIGZAG[n] if n < 4096 else _varint(n << 1)
    out += value


def _boolean(out: bytearray, value: bool) -> None:
    out.append(1 if value else 0)


def _double(out: bytearray, value: float) -> None:
    out += _DOUBLE(value)


def _float(out: bytearray, value: float) -> None:
    out += _FLOAT(value)


def _timestamp_millis(out: bytearray, value: Any) -> None:
    _long(out, (value - _EPOCH) // _ONE_MS if isinstance(value, dt.datetime) else value)


def _date(out: bytearray, value: Any) -> None:
    _long(out, value.toordinal() - _EPOCH_ORDINAL if isinstance(value, dt.date) else value)


_PRIMITIVES: dict[str, Write] = {"string": _string, "bytes": _bytes, "int": _long, "long": _long,
                                 "boolean": _boolean, "double": _double, "float": _float}


def compile_writer(schema: dict) -> Callable[[Any, bytes], bytes] | None:
    """`encode(model, prefix=b"") -> prefix + the Avro body` for a record schema with its logical types, or None
    if the schema has a construct this module does not compile."""
    named: dict[str, Write] = {}
    try:
        write = _compile(schema, None, named)
    except Unsupported:
        return None

    def encode(record: Any, prefix: bytes = b"") -> bytes:
        out = bytearray(prefix)
        write(out, record)
        return bytes(out)

    return encode


def _compile(node: Any, ns: str | None, named: dict[str, Write]) -> Write:
    if isinstance(node, str):
        if node in _PRIMITIVES:
            return _PRIMITIVES[node]
        full = node if "." in node or not ns else f"{ns}.{node}"
        found = named.get(full) or named.get(node)
        if found is None:
            raise Unsupported(f"type {node}")
        return found
    if isinstance(node, list):
        return _union(node, ns, named)
    logical = node.get("logicalType")
    if logical == "timestamp-millis":
        return _timestamp_millis
    if logical == "date":
        return _date
    kind = node["type"]
    if isinstance(kind, (dict, list)):
        return _compile(kind, ns, named)
    if kind in _PRIMITIVES:  # also uuid (a string) and any logical type we do not convert
        return _PRIMITIVES[kind]
    if kind == "record":
        return _record(node, ns, named)
    if kind == "enum":
        full = loader.fullname(node, ns)
        index = {symbol: _varint(i << 1) for i, symbol in enumerate(node["symbols"])}

        def write_enum(out: bytearray, value: Any) -> None:
            out += index[value.value if isinstance(value, enum.Enum) else value]

        named[full] = write_enum
        return write_enum
    if kind == "array":
        item = _compile(node["items"], ns, named)

        def write_array(out: bytearray, value: list) -> None:
            if value:
                _long(out, len(value))
                for v in value:
                    item(out, v)
            out.append(0)

        return write_array
    if kind == "map":
        item = _compile(node["values"], ns, named)

        def write_map(out: bytearray, value: dict) -> None:
            if value:
                _long(out, len(value))
                for k, v in value.items():
                    _string(out, k)
                    item(out, v)
            out.append(0)

        return write_map
    if kind == "fixed":
        def write_fixed(out: bytearray, value: bytes) -> None:
            out += value

        named[loader.fullname(node, ns)] = write_fixed
        return write_fixed
    raise Unsupported(f"type {kind}")


def _union(branches: list, ns: str | None, named: dict[str, Write]) -> Write:
    if len(branches) != 2 or "null" not in branches:
        raise Unsupported("a union other than ['null', T]")
    null_index = branches.index("null")
    write = _compile(branches[1 - null_index], ns, named)
    null, some = _varint(null_index << 1), _varint((1 - null_index) << 1)

    def write_optional(out: bytearray, value: Any) -> None:
        if value is None:
            out += null
        else:
            out += some
            write(out, value)

    return write_optional


def _record(node: dict, ns: str | None, named: dict[str, Write]) -> Write:
    full = loader.fullname(node, ns)
    inner_ns = full.rsplit(".", 1)[0] if "." in full else None
    fields: list[tuple[str, Write]] = []

    def write_record(out: bytearray, value: Any) -> None:
        values = value if type(value) is dict else value.__dict__  # a model's fields (or a dict of them)
        for name, write in fields:
            write(out, values[name])

    named[full] = write_record  # before the fields: a later field may name this type
    fields.extend((f["name"], _compile(f["type"], inner_ns, named)) for f in node["fields"])
    return write_record
