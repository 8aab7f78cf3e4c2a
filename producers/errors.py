"""Errors of the producer side, each printed by the CLI as one line (they are `GplxError`s).

Why typed: a source system that publishes through the SDK must tell "my record is wrong" (fix the data, do not
retry: a `PermanentError`) from "the bus is unreachable" (retry later: a `TransientError`) without parsing
messages. A registry that cannot be reached is `schemas.errors.RegistryUnavailable` (transient), a schema it does
not know or refuses `SchemaNotFound` / `IncompatibleSchema` (permanent), the same classes the consumers see. Messages never carry PII: they name
topics, event types, fields and rules, not CCCDs or names.
"""
from __future__ import annotations

from schemas.errors import GplxError, PermanentError, RegistryUnavailable, TransientError


class PublishError(GplxError):
    """Base: an event could not be published."""


class InvalidEvent(PublishError, PermanentError):
    """The event breaks its schema or a domain rule; the message names each field and rule. Do not retry."""


class UnroutableEvent(PublishError, PermanentError):
    """The catalogue has no single topic for this event type; pass `topic=` explicitly."""


class BrokerUnavailable(PublishError, TransientError):
    """Kafka could not be reached within the timeout."""


#: The old name of `schemas.errors.RegistryUnavailable`, kept for callers written before the two were merged.
RegistryUnreachable = RegistryUnavailable


class DeliveryError(PublishError, TransientError):
    """The broker did not acknowledge a record within the delivery timeout, or refused it."""


class SimulationError(GplxError):
    """Bad simulator arguments (unknown province, rates that do not add up)."""


class ExportError(PublishError, PermanentError):
    """The export file as a whole cannot be read (missing, not text, wrong columns): nothing was published."""
