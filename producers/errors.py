"""Errors of the producer side, each printed by the CLI as one line (they are `GplxError`s).

Why typed: a source system that publishes through the SDK must tell "my record is wrong" (fix the data, do not
retry) from "the bus is unreachable" (retry later) without parsing messages. Messages never carry PII: they name
topics, event types, fields and rules, not CCCDs or names.
"""
from __future__ import annotations

from schemas.errors import GplxError


class PublishError(GplxError):
    """Base: an event could not be published."""


class InvalidEvent(PublishError):
    """The event breaks its schema or a domain rule; the message names each field and rule. Do not retry."""


class UnroutableEvent(PublishError):
    """The catalogue has no single topic for this event type; pass `topic=` explicitly."""


class BrokerUnavailable(PublishError):
    """Kafka could not be reached within the timeout. Transient: retry later."""


class RegistryUnreachable(PublishError):
    """The schema registry could not be reached (or refused the schema). Transient unless the schema is wrong."""


class DeliveryError(PublishError):
    """The broker did not acknowledge a record within the delivery timeout, or refused it."""
