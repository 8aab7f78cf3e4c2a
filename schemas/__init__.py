"""gplx-bus contracts: Avro schemas, the pydantic models generated from them, the Confluent-wire-format serde,
the schema-registry client and the reference data (provinces, licence classes). Imports nothing else of ours.

Public API (imported lazily, so `import schemas.errors` stays cheap for the CLI):
    schemas.models      EVENT_TYPES, Event, every event/record/enum class by short name
    schemas.serde       AvroSerializer, AvroDeserializer, SerializationContext, MessageField, subject_name, key_bytes
    schemas.registry    RegistryClient (Confluent REST / Apicurio ccompat), InMemoryRegistry
    schemas.compat      check_compatible, check_released
    schemas.reference   provinces(), licence_classes(), current_code_for()
    schemas.errors      GplxError and the typed deserialization errors
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Event": "schemas.models",
    "EVENT_TYPES": "schemas.models",
    "AvroSerializer": "schemas.serde",
    "AvroDeserializer": "schemas.serde",
    "SerializationContext": "schemas.serde",
    "MessageField": "schemas.serde",
    "RegistryClient": "schemas.registry",
    "InMemoryRegistry": "schemas.registry",
    "GplxError": "schemas.errors",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'schemas' has no attribute {name!r}")
