"""Errors of the contracts package.

`GplxError` is the base the CLI prints as one line (gplx_bus/errors.py imports it). Deserialization failures are
typed, each with a stable `code` equal to a symbol of the DeadLetter `ErrorCode` enum, so the consumer that catches
one can write the dead letter without parsing messages. Messages name the topic and the schema, never PII
(no CCCD, no names): they end up in the DLQ and in logs.
"""
from __future__ import annotations


class GplxError(Exception):
    """Base of every error the project reports to a user as one line."""


class SchemaError(GplxError):
    """A local .avsc file or reference-data file is missing or malformed (a bug in this repo, not in the input)."""


class RegistryError(GplxError):
    """The schema registry answered with an error (message names the URL and subject)."""


class RegistryUnavailable(RegistryError):
    """The schema registry could not be reached. Transient: retry, do not dead-letter the record."""


class SchemaNotFound(RegistryError):
    """The registry does not know the subject, version or schema id asked for."""


class IncompatibleSchema(RegistryError):
    """The registry refused a schema because it breaks the subject's compatibility level."""


class SerializationError(GplxError):
    """A record could not be encoded (the producer's bug: the record does not fit its schema)."""


class DeserializationError(GplxError):
    """A record read from Kafka could not be turned into an event; it belongs in the DLQ under `code`."""

    code = "UNKNOWN"

    def __init__(self, message: str, *, topic: str | None = None, schema: str | None = None,
                 schema_id: int | None = None) -> None:
        where = []
        if topic is not None:
            where.append(f"topic {topic}")
        if schema is not None:
            where.append(f"schema {schema}")
        if schema_id is not None:
            where.append(f"schema id {schema_id}")
        prefix = f"[{self.code}] " + (", ".join(where) + ": " if where else "")
        super().__init__(prefix + message)
        self.topic = topic
        self.schema = schema
        self.schema_id = schema_id
        self.detail = message


class BadMagicByte(DeserializationError):
    """The value is not in the Confluent wire format (first byte not 0, or shorter than the 5-byte header)."""

    code = "BAD_MAGIC_BYTE"


class UnknownSchemaId(DeserializationError):
    """The schema id in the header is not in the registry."""

    code = "UNKNOWN_SCHEMA_ID"


class UnknownEventType(DeserializationError):
    """The writer schema is a record this code base has no model for."""

    code = "UNKNOWN_EVENT_TYPE"


class SchemaMismatch(DeserializationError):
    """The writer schema cannot be resolved against our reader schema (or cannot be parsed at all)."""

    code = "SCHEMA_MISMATCH"


class TruncatedPayload(DeserializationError):
    """The Avro body ended before the record did."""

    code = "TRUNCATED_PAYLOAD"


class GarbagePayload(DeserializationError):
    """The Avro body is malformed: bad union/enum index, bad UTF-8, absurd length, or bytes left over."""

    code = "GARBAGE_PAYLOAD"


class DomainInvalid(DeserializationError):
    """The record is valid Avro but breaks a domain rule (e.g. malformed CCCD); message names field and rule."""

    code = "DOMAIN_INVALID"


class SignedInFuture(DeserializationError):
    """A health certificate signed later than its arrival on the bus plus the allowed clock skew: it cannot be
    genuine (a future date would make it "the latest" and override real conclusions), so it is refused."""

    code = "SIGNED_IN_FUTURE"


class SignatureInvalid(DeserializationError):
    """A health certificate whose clinic signature does not verify (bad, unknown or revoked key, or unsigned from
    a clinic that signs): a forged record that reached the topic some other way than the gateway
    (`schemas.signature`)."""

    code = "SIGNATURE_INVALID"


#: Every DeserializationError subclass by its DLQ code.
ERROR_CLASSES: dict[str, type[DeserializationError]] = {
    cls.code: cls
    for cls in (BadMagicByte, UnknownSchemaId, UnknownEventType, SchemaMismatch, TruncatedPayload,
                GarbagePayload, DomainInvalid, SignedInFuture, SignatureInvalid)
}
