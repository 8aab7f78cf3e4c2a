"""The root of every error of the project, and the errors of the contracts package.

One root: `GplxError`. Every package keeps its own errors in its own `errors.py` (schemas, topology, producers,
consumers, deploy/local, gplx_bus), each a `GplxError`, so the CLI prints any of them as one line
(gplx_bus/errors.py) and no command catches `ValueError` itself. This module imports nothing of ours: every
package may import it.

Whether to retry is said by the type, not by a docstring:
- `TransientError`: the world was not ready (a registry or broker away); the same call may succeed later. A
  consumer waits and retries, it never dead-letters for it;
- `PermanentError`: the input or the setup is wrong; retrying changes nothing (fix it, or dead-letter the record).
An error that is neither (e.g. `SettingsError`) is a usage error, reported and not retried.

Deserialization failures are typed, each with a stable `code` from `DlqCode`, the one enum of dead-letter reasons
(schemas.models.ErrorCode, generated from DeadLetter.avsc, *is* this enum), so the consumer that catches one can
write the dead letter without parsing messages. Messages name the topic and the schema, never PII
(no CCCD, no names): they end up in the DLQ and in logs.
"""
from __future__ import annotations

import enum


class GplxError(Exception):
    """Base of every error the project reports to a user as one line."""


class TransientError(GplxError):
    """Retry later: the same call may succeed once a dependency (registry, broker) is back. Never dead-letter."""


class PermanentError(GplxError):
    """Do not retry: the input or the setup is wrong; the same call fails the same way."""


class DlqCode(str, enum.Enum):
    """Why a record was dead-lettered: the symbols of `ErrorCode` in schemas/avro/dlq/DeadLetter.avsc (a unit test
    checks they agree; schemas.models uses this class as `ErrorCode`). UNKNOWN is the forward-compatible default."""

    BAD_MAGIC_BYTE = "BAD_MAGIC_BYTE"
    UNKNOWN_SCHEMA_ID = "UNKNOWN_SCHEMA_ID"
    TRUNCATED_PAYLOAD = "TRUNCATED_PAYLOAD"
    GARBAGE_PAYLOAD = "GARBAGE_PAYLOAD"
    DOMAIN_INVALID = "DOMAIN_INVALID"
    UNKNOWN_EVENT_TYPE = "UNKNOWN_EVENT_TYPE"
    SCHEMA_MISMATCH = "SCHEMA_MISMATCH"
    PROCESSING_FAILED = "PROCESSING_FAILED"
    SIGNED_IN_FUTURE = "SIGNED_IN_FUTURE"
    SIGNATURE_INVALID = "SIGNATURE_INVALID"
    UNKNOWN = "UNKNOWN"

    def __str__(self) -> str:
        return self.value


DlqCode.avro_name = "vn.gplx.dlq.ErrorCode"  # as the enums schemas.models generates


class SchemaError(GplxError):
    """A local .avsc file or reference-data file is missing or malformed (a bug in this repo, not in the input)."""


class RegistryError(GplxError):
    """The schema registry answered with an error (message names the URL and subject)."""


class RegistryUnavailable(RegistryError, TransientError):
    """The schema registry could not be reached (the producer SDK raises it too)."""


class SchemaNotFound(RegistryError, PermanentError):
    """The registry does not know the subject, version or schema id asked for."""


class SchemaNotRegistered(SchemaNotFound):
    """A client that may only look schemas up found its contract missing under a subject (not transient)."""

    def __init__(self, subject: str) -> None:
        super().__init__(
            f"schema registry has no subject {subject} with this version of its schema: the operator registers "
            f"the contracts first (`gplx-bus schemas register`, same --prefix, with registry write access); "
            f"this client only looks them up")
        self.subject = subject


class IncompatibleSchema(RegistryError, PermanentError):
    """The registry refused a schema because it breaks the subject's compatibility level."""


class SerializationError(GplxError):
    """A record could not be encoded (the producer's bug: the record does not fit its schema)."""


class DeserializationError(PermanentError):
    """A record read from Kafka could not be turned into an event; it belongs in the DLQ under `code`."""

    code: DlqCode = DlqCode.UNKNOWN

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

    code = DlqCode.BAD_MAGIC_BYTE


class UnknownSchemaId(DeserializationError):
    """The schema id in the header is not in the registry."""

    code = DlqCode.UNKNOWN_SCHEMA_ID


class UnknownEventType(DeserializationError):
    """The writer schema is a record this code base has no model for."""

    code = DlqCode.UNKNOWN_EVENT_TYPE


class SchemaMismatch(DeserializationError):
    """The writer schema cannot be resolved against our reader schema (or cannot be parsed at all)."""

    code = DlqCode.SCHEMA_MISMATCH


class TruncatedPayload(DeserializationError):
    """The Avro body ended before the record did."""

    code = DlqCode.TRUNCATED_PAYLOAD


class GarbagePayload(DeserializationError):
    """The Avro body is malformed: bad union/enum index, bad UTF-8, absurd length, or bytes left over."""

    code = DlqCode.GARBAGE_PAYLOAD


class DomainInvalid(DeserializationError):
    """The record is valid Avro but breaks a domain rule (e.g. malformed CCCD); message names field and rule."""

    code = DlqCode.DOMAIN_INVALID


class SignedInFuture(DeserializationError):
    """A health certificate signed later than its arrival on the bus plus the allowed clock skew: it cannot be
    genuine (a future date would make it "the latest" and override real conclusions), so it is refused."""

    code = DlqCode.SIGNED_IN_FUTURE


class SignatureInvalid(DeserializationError):
    """A health certificate whose clinic signature does not verify (bad, unknown or revoked key, or unsigned from
    a clinic that signs): a forged record that reached the topic some other way than the gateway
    (`schemas.signature`)."""

    code = DlqCode.SIGNATURE_INVALID


#: Every DeserializationError subclass by its DLQ code.
ERROR_CLASSES: dict[str, type[DeserializationError]] = {
    cls.code.value: cls
    for cls in (BadMagicByte, UnknownSchemaId, UnknownEventType, SchemaMismatch, TruncatedPayload,
                GarbagePayload, DomainInvalid, SignedInFuture, SignatureInvalid)
}
