"""Pydantic v2 models generated from the .avsc files at import time.

Why generate: the .avsc files are the contract other teams (provinces, clinics, the portal) read and the registry
stores; generating the models from them leaves one source of truth, so a model cannot drift from its schema.
The domain rules are attached by field name (see `schemas.validation`).

Mapping (Avro -> Python): string -> str, uuid -> str (canonical UUID text), bytes -> bytes, int/long -> int
(range-checked so encoding never overflows), boolean -> bool, double/float -> float, date -> datetime.date,
timestamp-millis -> aware datetime normalised to UTC milliseconds, enum -> a `str` Enum (models store the symbol
text, so `event.status == "PAID"` and `== PaymentStatus.PAID` both hold), array -> list, record -> nested model,
["null", T] with default null -> Optional[T] = None.

Every generated class is a module attribute under its Avro short name (`models.HealthCertificate`,
`models.ReasonCode`, `models.Conclusion`); `EVENT_TYPES` maps Avro full names to event classes.
"""
from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Any, ClassVar, Optional

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, create_model, \
    model_validator

from schemas import loader, validation
from schemas.errors import DlqCode, SchemaError


#: Set in a record's `__dict__` when pydantic built it by validation and every nested record in it was validated
#: too; `validated()` and the producer SDK then trust it instead of validating it again (a re-validation costs more
#: than the Avro encoding). Paths that skip validation never set it: `model_construct`, `model_copy(update=...)`
#: (dropped below), nested records made either way. Copies and pickles keep it: validity depends only on the values.
#: pydantic ignores `__dict__` keys that are not fields in dumps, equality, hashing, repr and iteration.
VALIDATED = "_gplx_validated"


class AvroRecord(BaseModel):
    """Base of every generated record model (events and nested records)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True, validate_default=False)

    avro_name: ClassVar[str]  # Avro full name
    nested_records: ClassVar[tuple[str, ...]] = ()  # fields holding a record or a list of records

    def to_avro_dict(self) -> dict[str, Any]:
        """The record as fastavro / the avro package take it (nested dicts, enum symbols as str)."""
        return self.model_dump()

    def model_post_init(self, context: Any, /) -> None:
        # pydantic calls this where it builds a new instance: after validating the fields, and in model_construct
        # (which drops the mark again below). Not for an instance passed through as a field value, unlike an
        # "after" model validator, which also runs on those.
        fields = self.__dict__
        for name in self.nested_records:  # pydantic does not re-validate a record instance given as a field
            value = fields[name]
            if value is not None and not all(VALIDATED in item.__dict__
                                             for item in (value if isinstance(value, list) else (value,))):
                return
        fields[VALIDATED] = True

    @classmethod
    def model_construct(cls, _fields_set: set[str] | None = None, **values: Any):
        built = super().model_construct(_fields_set, **values)
        built.__dict__.pop(VALIDATED, None)  # nothing was validated
        return built

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False):
        copied = super().model_copy(update=update, deep=deep)
        if update:  # pydantic does not validate the update
            copied.__dict__.pop(VALIDATED, None)
        return copied


def is_validated(record: AvroRecord) -> bool:
    """Whether pydantic validated this record and everything in it (see VALIDATED)."""
    return VALIDATED in record.__dict__


class Event(AvroRecord):
    """Base of every event model: a top-level Avro record that travels on a topic."""

    avro_schema: ClassVar[dict[str, Any]]  # self-contained schema (shared types inlined)

    @classmethod
    def from_avro_dict(cls, data: dict[str, Any]) -> "Event":
        """Build (and validate) the event from a decoded Avro record; raises pydantic.ValidationError."""
        return cls.model_validate(data)


# Module-level registries, filled below.
EVENT_TYPES: dict[str, type[Event]] = {}
RECORD_TYPES: dict[str, type[AvroRecord]] = {}
ENUM_TYPES: dict[str, type[enum.Enum]] = {}

_Uuid = Annotated[str, BeforeValidator(validation.uuid_string)]
_UtcMillis = Annotated[AwareDatetime, AfterValidator(validation.utc_millis)]
_PRIMITIVE = {
    "string": str, "bytes": bytes, "boolean": bool, "float": float, "double": float,
    "int": Annotated[int, Field(ge=validation.INT_MIN, le=validation.INT_MAX)],
    "long": Annotated[int, Field(ge=validation.LONG_MIN, le=validation.LONG_MAX)],
}


def _python_type(avro_type: Any, namespace: str) -> Any:
    """The Python annotation for an Avro type (named types are generated on first sight)."""
    if isinstance(avro_type, str):
        if avro_type in _PRIMITIVE:
            return _PRIMITIVE[avro_type]
        full = avro_type if "." in avro_type else f"{namespace}.{avro_type}"
        if full in RECORD_TYPES:
            return RECORD_TYPES[full]
        if full in ENUM_TYPES:
            return ENUM_TYPES[full]
        raise SchemaError(f"unresolved Avro type {full}")
    if isinstance(avro_type, list):
        branches = [b for b in avro_type if b != "null"]
        if len(branches) != 1 or len(avro_type) != 2:
            raise SchemaError(f"only ['null', T] unions are supported, got {avro_type}")
        return Optional[_python_type(branches[0], namespace)]
    kind, logical = avro_type["type"], avro_type.get("logicalType")
    if logical == "uuid":
        return _Uuid
    if logical == "timestamp-millis":
        return _UtcMillis
    if logical == "date":
        return dt.date
    if kind == "record":
        return _record(avro_type, namespace, AvroRecord)
    if kind == "enum":
        return _enum(avro_type, namespace)
    if kind == "array":
        return list[_python_type(avro_type["items"], namespace)]
    if kind == "map":
        return dict[str, _python_type(avro_type["values"], namespace)]
    return _python_type(kind, namespace)


def _enum(schema: dict, namespace: str) -> type[enum.Enum]:
    full = loader.fullname(schema, namespace)
    if full == DlqCode.avro_name:  # the one enum of dead-letter reasons, shared with schemas.errors
        if set(schema["symbols"]) != set(DlqCode.__members__):
            raise SchemaError(f"{full} symbols differ from schemas.errors.DlqCode: update both together")
        ENUM_TYPES[full] = DlqCode
    if full not in ENUM_TYPES:
        cls = enum.Enum(schema["name"], {s: s for s in schema["symbols"]}, type=str, module=__name__)
        cls.__doc__ = schema.get("doc")
        cls.avro_name = full
        ENUM_TYPES[full] = cls
    return ENUM_TYPES[full]


def _with_rules(annotation: Any, rules: list) -> Any:
    """Attach field rules; for Optional fields the rules apply to the value, not to None."""
    if not rules:
        return annotation
    validators = [AfterValidator(r) for r in rules]
    if getattr(annotation, "__origin__", None) is not None and type(None) in getattr(annotation, "__args__", ()):
        inner = next(a for a in annotation.__args__ if a is not type(None))
        return Optional[Annotated[inner, *validators]]
    return Annotated[annotation, *validators]


def _holds_record(avro_type: Any, namespace: str) -> bool:
    """Whether a field of this type holds a record model (directly, optional, or as array items)."""
    annotation = _python_type(avro_type, namespace)
    if isinstance(avro_type, dict) and avro_type.get("type") == "array":
        annotation = _python_type(avro_type["items"], namespace)
    args = getattr(annotation, "__args__", None) or (annotation,)
    return any(isinstance(a, type) and issubclass(a, AvroRecord) for a in args)


def _model_rules(field_names: set[str]):
    """A pydantic after-validator running every model rule whose fields this record has."""
    rules = [rule for needs, rule in validation.MODEL_RULES if needs <= field_names]
    if not rules:
        return None

    def check(self):
        for rule in rules:
            rule(self)
        return self

    return model_validator(mode="after")(check)


def _record(schema: dict, namespace: str, base: type[AvroRecord]) -> type[AvroRecord]:
    full = loader.fullname(schema, namespace)
    if full in RECORD_TYPES:
        return RECORD_TYPES[full]
    own_ns = full.rsplit(".", 1)[0]
    fields: dict[str, Any] = {}
    for f in schema["fields"]:
        annotation = _with_rules(_python_type(f["type"], own_ns), validation.field_rules(f["name"], f["type"]))
        default = f.get("default", ...)
        fields[f["name"]] = (annotation, Field(default, description=f.get("doc")))
    validators = {}
    check = _model_rules(set(fields))
    if check is not None:
        validators["domain_rules"] = check
    model = create_model(schema["name"], __base__=base, __module__=__name__, __doc__=schema.get("doc"),
                         __validators__=validators, **fields)
    model.avro_name = full
    model.nested_records = tuple(f["name"] for f in schema["fields"] if _holds_record(f["type"], own_ns))
    RECORD_TYPES[full] = model
    return model


def _build() -> None:
    for name in loader.event_names():
        schema = loader.event_schema(name)
        model = _record(schema, "", Event)
        model.avro_schema = schema
        EVENT_TYPES[name] = model
    # Expose every generated class under its short name; short names must therefore be unique.
    for full, cls in [*RECORD_TYPES.items(), *ENUM_TYPES.items()]:
        short = loader.short_name(full)
        if short in globals() and globals()[short] is not cls:
            raise SchemaError(f"two Avro types share the short name {short}; rename one")
        globals()[short] = cls


_build()


def event_type(avro_name: str) -> type[Event]:
    """The model for an Avro full name or short name ('HealthCertificate')."""
    if avro_name in EVENT_TYPES:
        return EVENT_TYPES[avro_name]
    for full, cls in EVENT_TYPES.items():
        if loader.short_name(full) == avro_name:
            return cls
    raise KeyError(f"no event type {avro_name!r}")


def __getattr__(name: str) -> Any:  # pragma: no cover - only for a clear message on typos
    raise AttributeError(f"schemas.models has no event, record or enum named {name!r}")
