"""Confluent-wire-format Avro serializer and deserializer, in the style of confluent-kafka's `serialization`.

Wire format of a value: magic byte 0, the schema id as 4 bytes big-endian, then the Avro binary body. Encoding and
decoding use fastavro's schemaless writer/reader on schemas parsed once (about 10x the `avro` package).

Subject naming: TopicRecordNameStrategy, `<topic>-<record full name>`. Why: several topics carry several event
types (cases.events carries CaseOpened ... IssuanceRequested; dlq carries DeadLetter beside nothing else today but
may grow), which TopicNameStrategy (`<topic>-value`, one schema per topic) cannot express; and compatibility must be
checked per event *on each topic*, since a province may subscribe to one topic and not another, which
RecordNameStrategy (one subject per record across all topics) would blur.

Keys are the citizen id (CCCD) as plain UTF-8, not Avro: every producer, in any language, must produce the same key
bytes for the same citizen so that co-partitioning (one worker owns all facts about one citizen) holds. An Avro key
would embed a schema id, which differs per subject, and so would split one citizen across partitions.

Hostile input: the deserializer raises only `DeserializationError` subclasses (each with a DLQ `code`), or
`RegistryUnavailable` when the registry cannot be reached (transient: retry, do not dead-letter). fastavro's reader
checks each declared string/bytes length against what the buffer holds and reads from an in-memory buffer, so a
length prefix of 2**62 fails fast without allocating; the one unbounded loop left (an array whose items take zero
bytes, e.g. array<null>) is refused at schema-parse time, as are recursive writer schemas; leftover bytes after the
record are an error rather than silently ignored.
"""
from __future__ import annotations

import enum
import io
import json
import struct
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import fastavro
from fastavro.read import SchemaResolutionError
from pydantic import ValidationError

from schemas import compat, encoder, loader, logical
from schemas.errors import (BadMagicByte, DomainInvalid, GarbagePayload, SchemaMismatch, SchemaNotFound,
                            SchemaNotRegistered, SerializationError, TruncatedPayload, UnknownEventType,
                            UnknownSchemaId)
from schemas.models import EVENT_TYPES, VALIDATED, Event
from schemas.validation import explain

MAGIC_BYTE = 0
HEADER = struct.Struct(">bI")  # magic byte, schema id


class MessageField(str, enum.Enum):
    KEY = "key"
    VALUE = "value"


@dataclass(frozen=True)
class SerializationContext:
    """Where the bytes go or come from; the topic picks the subject, errors name it."""

    topic: str
    field: MessageField = MessageField.VALUE
    headers: Any = None


class SchemaRegistry(Protocol):
    """What serde needs from a registry; `schemas.registry.RegistryClient` and `InMemoryRegistry` provide it."""

    def register(self, subject: str, schema: str) -> int: ...
    def lookup(self, subject: str, schema: str) -> int: ...
    def get_by_id(self, schema_id: int) -> str: ...


def subject_name(topic: str, record_fullname: str) -> str:
    """TopicRecordNameStrategy: `<topic>-<record full name>` (see the module docstring for why)."""
    return f"{topic}-{record_fullname}"


def key_bytes(key: str | None) -> bytes | None:
    """The partition key on the wire: the CCCD (or other id) as UTF-8, the same from every producer."""
    return None if key is None else key.encode("utf-8")


def key_str(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", errors="replace")


# ---------------------------------------------------------------------------------------------------------------

class AvroSerializer:
    """Event model (or Avro dict) -> Confluent wire bytes.

    auto_register=True registers the schema on first use of each subject (unit tests on an in-memory registry);
    every client of the bus uses auto_register=False: only the operator's `gplx-bus schemas register` changes the
    registry, and an unregistered schema fails fast with SchemaNotRegistered naming the subject.
    """

    def __init__(self, registry: SchemaRegistry, *, auto_register: bool = True) -> None:
        self._registry = registry
        self._auto_register = auto_register
        # (topic, avro full name) -> (5-byte header, parsed schema without logical types, to_wire converter)
        self._plans: dict[tuple[str, str], tuple[bytes, Any, Any]] = {}
        self._encoders: dict[str, Any] = {}  # avro full name -> compiled writer of validated models (or None)

    def __call__(self, event: Event | None, ctx: SerializationContext) -> bytes | None:
        if event is None:
            return None  # tombstone
        name = event.avro_name
        encode = self._encoders[name] if name in self._encoders else self._encoder(name)
        if encode is None or VALIDATED not in event.__dict__:  # not validated: fastavro checks every value
            return self.serialize_dict(name, event.to_avro_dict(), ctx)
        header = self._plan_for(ctx.topic, name)[0]
        try:
            return encode(event, header)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError, struct.error) as exc:
            raise SerializationError(f"topic {ctx.topic}, schema {name}: record does not fit the schema: "
                                     f"{type(exc).__name__}") from exc

    def _encoder(self, avro_name: str):
        self._encoders[avro_name] = encoder.compile_writer(loader.event_schema(avro_name))
        return self._encoders[avro_name]

    def serialize_dict(self, avro_name: str, record: dict[str, Any], ctx: SerializationContext) -> bytes:
        """Hot path: encode an already-valid Avro dict (no pydantic on the way)."""
        header, parsed, to_wire = self._plan_for(ctx.topic, avro_name)
        buf = io.BytesIO()
        buf.write(header)
        try:
            fastavro.schemaless_writer(buf, parsed, record if to_wire is None else to_wire(record))
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            raise SerializationError(f"topic {ctx.topic}, schema {avro_name}: record does not fit the schema: "
                                     f"{type(exc).__name__}") from exc
        return buf.getvalue()

    def serialize_for_topics(self, event: Event, contexts: Sequence[SerializationContext]) -> list[bytes]:
        """One event bound for several topics (a case event goes to cases.events and its province's topic): the
        Avro body is encoded once, only the 5-byte header (each subject's schema id) differs per topic."""
        first = self(event, contexts[0])
        body = first[HEADER.size:]
        return [first] + [self._plan_for(ctx.topic, event.avro_name)[0] + body for ctx in contexts[1:]]

    def _plan_for(self, topic: str, avro_name: str) -> tuple[bytes, Any, Any]:
        return self._plans.get((topic, avro_name)) or self._plan(topic, avro_name)

    def _plan(self, topic: str, avro_name: str) -> tuple[bytes, Any, Any]:
        """Once per (topic, event type): schema id from the registry, parsed schema, converters."""
        schema = loader.event_schema(avro_name)  # raises SchemaError for an unknown event
        header = HEADER.pack(MAGIC_BYTE, self._schema_id(subject_name(topic, avro_name), avro_name))
        plan = (header, _parse(logical.strip(schema), avro_name), logical.converters(schema)[0])
        self._plans[(topic, avro_name)] = plan
        return plan

    def _schema_id(self, subject: str, avro_name: str) -> int:
        text = loader.event_schema_text(avro_name)
        if self._auto_register:
            return self._registry.register(subject, text)
        try:
            return self._registry.lookup(subject, text)
        except SchemaNotFound:
            raise SchemaNotRegistered(subject) from None


# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Writer:
    """A writer schema from the registry, parsed and paired with our reader schema, cached by id."""

    avro_name: str
    parsed: Any  # writer schema, logical types stripped (see schemas.logical)
    reader: Any  # our schema, stripped; None when the writer schema is ours exactly (no resolution needed)
    from_wire: Any  # converter for timestamps and dates, or None
    model: type[Event]


class AvroDeserializer:
    """Confluent wire bytes -> event model (validated) or, with `decode_only`, the Avro dict.

    Resolves the writer schema (from the header's id) against our own schema of the same event, so producers and
    consumers may be one compatible version apart in either direction.
    """

    NEGATIVE_CACHE = 1024  # unknown ids remembered, so garbage headers do not hammer the registry

    def __init__(self, registry: SchemaRegistry, *, event_types: dict[str, type[Event]] | None = None) -> None:
        self._registry = registry
        self._event_types = event_types or EVENT_TYPES
        self._writers: dict[int, _Writer] = {}
        self._unknown: OrderedDict[int, Exception] = OrderedDict()
        self._reader_parsed: dict[str, Any] = {}

    def __call__(self, data: bytes | None, ctx: SerializationContext) -> Event | None:
        if data is None:
            return None
        writer, record = self._decode(data, ctx)
        try:
            return writer.model.model_validate(record)
        except ValidationError as exc:
            raise DomainInvalid(explain(exc), topic=ctx.topic, schema=writer.avro_name) from None

    def decode(self, data: bytes, ctx: SerializationContext) -> tuple[str, dict[str, Any]]:
        """(Avro full name, decoded dict) without domain validation: for tools and the hot path of replays."""
        writer, record = self._decode(data, ctx)
        return writer.avro_name, record

    def _decode(self, data: bytes, ctx: SerializationContext) -> tuple[_Writer, dict[str, Any]]:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise GarbagePayload(f"expected bytes, got {type(data).__name__}", topic=ctx.topic)
        if len(data) < HEADER.size or data[0] != MAGIC_BYTE:
            raise BadMagicByte(f"not Confluent wire format: {len(data)} bytes, first byte "
                               f"{data[0] if data else 'none'} (expected 0 and at least 5 bytes)", topic=ctx.topic)
        schema_id = int.from_bytes(data[1:5], "big")
        writer = self._writers.get(schema_id) or self._writer(schema_id, ctx)
        buf = io.BytesIO(data)
        buf.seek(HEADER.size)
        try:
            record = fastavro.schemaless_reader(buf, writer.parsed, writer.reader)
            if writer.from_wire is not None:
                record = writer.from_wire(record)
        except EOFError:
            raise TruncatedPayload("Avro body ends before the record does", topic=ctx.topic,
                                   schema=writer.avro_name, schema_id=schema_id) from None
        except SchemaResolutionError as exc:
            raise SchemaMismatch(str(exc)[:200], topic=ctx.topic, schema=writer.avro_name,
                                 schema_id=schema_id) from None
        except (RecursionError, MemoryError) as exc:
            raise GarbagePayload(f"malformed Avro body ({type(exc).__name__})", topic=ctx.topic,
                                 schema=writer.avro_name, schema_id=schema_id) from None
        except Exception as exc:  # noqa: BLE001 - any decoder failure on hostile bytes is a garbage payload
            raise GarbagePayload(f"malformed Avro body ({type(exc).__name__})", topic=ctx.topic,
                                 schema=writer.avro_name, schema_id=schema_id) from None
        left = len(data) - buf.tell()
        if left:
            raise GarbagePayload(f"{left} bytes left over after the record", topic=ctx.topic,
                                 schema=writer.avro_name, schema_id=schema_id)
        return writer, record

    def _writer(self, schema_id: int, ctx: SerializationContext) -> _Writer:
        """Fetch, check and cache the writer schema for an id (the slow path, once per id)."""
        if schema_id in self._unknown:
            raise self._unknown[schema_id]
        try:
            text = self._registry.get_by_id(schema_id)
        except SchemaNotFound:
            return self._remember(schema_id, UnknownSchemaId("not in the registry", topic=ctx.topic,
                                                             schema_id=schema_id))
        try:
            schema = json.loads(text)
            name = loader.fullname(schema) if isinstance(schema, dict) and "name" in schema else "(unnamed)"
        except (ValueError, TypeError, KeyError):
            return self._remember(schema_id, SchemaMismatch("registry schema is not valid JSON", topic=ctx.topic,
                                                            schema_id=schema_id))
        model = self._event_types.get(name)
        if model is None:
            return self._remember(schema_id, UnknownEventType("no model for this record", topic=ctx.topic,
                                                              schema=name, schema_id=schema_id))
        try:
            _refuse_unbounded(schema)
            parsed = _parse(logical.strip(schema), name)
        except SchemaMismatch as exc:
            return self._remember(schema_id, SchemaMismatch(exc.detail, topic=ctx.topic, schema=name,
                                                            schema_id=schema_id))
        ours = loader.event_schema(name)
        reader = None
        if schema != ours:  # another version (or another layout) of the event: resolve it against ours
            problems = compat.incompatibilities(ours, schema)
            if problems:
                return self._remember(schema_id, SchemaMismatch("; ".join(problems)[:500], topic=ctx.topic,
                                                                schema=name, schema_id=schema_id))
            reader = self._reader(name)
        writer = self._writers[schema_id] = _Writer(name, parsed, reader, logical.converters(ours)[1], model)
        return writer

    def _reader(self, name: str) -> Any:
        if name not in self._reader_parsed:
            self._reader_parsed[name] = _parse(logical.strip(loader.event_schema(name)), name)
        return self._reader_parsed[name]

    def _remember(self, schema_id: int, exc: Exception):
        self._unknown[schema_id] = exc
        while len(self._unknown) > self.NEGATIVE_CACHE:
            self._unknown.popitem(last=False)
        raise exc


def _parse(schema: Any, name: str) -> Any:
    try:
        return fastavro.parse_schema(schema)
    except Exception as exc:  # noqa: BLE001 - fastavro raises several types for bad schemas
        raise SchemaMismatch(f"schema does not parse: {type(exc).__name__}: {str(exc)[:200]}", schema=name) from None


def _refuse_unbounded(schema: Any) -> None:
    """Refuse writer schemas a hostile payload could make the reader loop on without consuming bytes.

    An array item that encodes in zero bytes (null, a record of only such fields, fixed size 0) lets a block count
    of 2**62 spin forever; a recursive record lets a payload nest until the C stack overflows.
    """
    names: dict[str, Any] = {}
    compat._index(schema, None, names)

    def zero_width(t: Any, ns: str | None, stack: tuple[str, ...]) -> bool:
        if isinstance(t, str):
            if t == "null":
                return True
            full = t if "." in t or not ns else f"{ns}.{t}"
            t = names.get(full, names.get(t, t))
            if isinstance(t, str):
                return False
        if isinstance(t, list):
            return False  # a union index takes at least one byte
        kind = t["type"]
        if isinstance(kind, (dict, list)) or kind == "null":
            return zero_width(kind, ns, stack)
        if kind == "fixed":
            return t.get("size", 0) == 0
        if kind in ("record", "error"):
            full = loader.fullname(t, ns)
            if full in stack:
                raise SchemaMismatch(f"recursive record {full} is not accepted from the wire")
            inner_ns = full.rsplit(".", 1)[0] if "." in full else None
            return all(zero_width(f["type"], inner_ns, stack + (full,)) for f in t["fields"])
        return False

    def walk(t: Any, ns: str | None, stack: tuple[str, ...]) -> None:
        if isinstance(t, list):
            for b in t:
                walk(b, ns, stack)
            return
        if isinstance(t, str):
            full = t if "." in t or not ns else f"{ns}.{t}"
            if full in stack:
                raise SchemaMismatch(f"recursive record {full} is not accepted from the wire")
            return
        kind = t.get("type")
        if isinstance(kind, (dict, list)):
            walk(kind, ns, stack)
        elif kind in ("record", "error"):
            full = loader.fullname(t, ns)
            if full in stack:
                raise SchemaMismatch(f"recursive record {full} is not accepted from the wire")
            inner_ns = full.rsplit(".", 1)[0] if "." in full else None
            for f in t["fields"]:
                walk(f["type"], inner_ns, stack + (full,))
        elif kind == "array":
            if zero_width(t["items"], ns, stack):
                raise SchemaMismatch("array of zero-width items is not accepted from the wire")
            walk(t["items"], ns, stack)
        elif kind == "map":
            walk(t["values"], ns, stack)

    walk(schema, None, ())
