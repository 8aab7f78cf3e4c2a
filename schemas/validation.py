"""Domain rules the event models enforce, keyed by field name.

Why by field name: the same fact (a CCCD, a province code, a licence class, a VND amount) appears in many events;
attaching the rule to the name makes every event that carries the field check it the same way, and a new event
gets the checks for free. Each rule raises a pydantic error whose *type* is the rule's name (e.g.
`cccd_province`), so tests, the DLQ and the CLI can say which rule broke without parsing text.

Messages never contain the offending CCCD, name or phone (they reach the DLQ and logs); codes of provinces and
classes are not personal data and are quoted to help the reader.
"""
from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from schemas import reference

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1

_CCCD = re.compile(r"[0-9]{12}")
_CERTIFICATE = re.compile(r"(?P<serial>[0-9]{5})/GKSKLX/(?P<facility>[A-Za-z0-9][A-Za-z0-9._-]*)/(?P<yy>[0-9]{2})")
_PHONE = re.compile(r"(0|\+84)[0-9]{9,10}")


def fail(rule: str, message: str, **context: Any) -> PydanticCustomError:
    """The error a rule raises: its type is the rule name, the message says what the rule wants."""
    # Braces in the message would be read as template placeholders by pydantic.
    return PydanticCustomError(rule, message.replace("{", "(").replace("}", ")"), context or None)


# ---- field rules: value -> value (may normalise), raise fail(...) ----

def uuid_string(value: Any) -> str:
    """event_id: a UUID, kept as its canonical lower-case text (the Avro uuid logical type is a string)."""
    try:
        return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
    except ValueError:
        raise fail("uuid_format", "must be a UUID such as 123e4567-e89b-12d3-a456-426614174000") from None


def utc_millis(value: dt.datetime) -> dt.datetime:
    """Timestamps travel as UTC milliseconds; normalising here makes a round trip return an equal model."""
    value = value.astimezone(dt.timezone.utc)
    return value.replace(microsecond=value.microsecond // 1000 * 1000, fold=0)


def cccd(value: str) -> str:
    if not _CCCD.fullmatch(value):
        raise fail("cccd_format", "CCCD must be exactly 12 digits")
    if value[0] != "0" or not reference.is_old_province_code(value[1:3]):
        raise fail("cccd_province", "CCCD must start with '0' + an old (pre-July-2025) 2-digit province code")
    return value


def current_province(value: str) -> str:
    if not reference.is_current_province_code(value):
        hint = ""
        if reference.is_old_province_code(value):
            hint = f"; old code '{value}' now belongs to '{reference.current_code_for(value)}'"
        raise fail("province_current", f"'{value}' is not a current (post-1 July 2025) province code{hint}")
    return value


def province_held(value: str) -> str:
    """A province code a citizen may still hold: current, or old (pre-July-2025, as on CCCDs, licences and
    addresses). The processor routes by its current code (`reference.current_code_of`); refusing an old code would
    put a citizen's application in the operator-only DLQ."""
    if not (reference.is_current_province_code(value) or reference.is_old_province_code(value)):
        raise fail("province_known", f"'{value}' is neither a current nor an old (pre-July-2025) province code")
    return value


def old_province(value: str) -> str:
    if not reference.is_old_province_code(value):
        raise fail("province_old", f"'{value}' is not an old (pre-July-2025) province code")
    return value


def licence_class(value: str) -> str:
    if value not in reference.licence_classes():
        raise fail("licence_class_known", f"'{value}' is not a known licence class (2025 set or pre-2025)")
    return value


def licence_classes(value: list[str]) -> list[str]:
    if not value:
        raise fail("licence_classes_non_empty", "at least one licence class is required")
    for item in value:
        licence_class(item)
    if len(set(value)) != len(value):
        raise fail("licence_classes_unique", "a licence class is listed twice")
    return value


def certificate_number(value: str) -> str:
    if not _CERTIFICATE.fullmatch(value):
        raise fail("certificate_number_format", "health certificate number must be NNNNN/GKSKLX/<facility code>/<yy>")
    return value


def health_group(value: int) -> int:
    if value not in (1, 2, 3):
        raise fail("health_group_range", "health group must be 1, 2 or 3")
    return value


def non_negative_vnd(value: int) -> int:
    if value < 0:
        raise fail("vnd_non_negative", "amount in VND must not be negative")
    return value


def non_negative(value: int) -> int:
    if value < 0:
        raise fail("non_negative", "must not be negative")
    return value


def point_balance(value: int) -> int:
    if not 0 <= value <= 12:
        raise fail("point_balance_range", "point balance must be between 0 and 12 (12-point system)")
    return value


def phone(value: str) -> str:
    if not _PHONE.fullmatch(value):
        raise fail("phone_format", "phone must be a Vietnamese number: 0 or +84 followed by 9-10 digits")
    return value


def not_blank(value: str) -> str:
    if not value.strip():
        raise fail("not_blank", "must not be empty")
    return value


def non_empty_list(value: list) -> list:
    if not value:
        raise fail("non_empty", "must list at least one item")
    return value


_BY_NAME: dict[str, list[Callable[[Any], Any]]] = {
    "event_id": [uuid_string],
    "cccd": [cccd],
    "province": [current_province],
    # The application's residence is what the citizen typed: an old code is still theirs (see province_held).
    # `province` on every other event is the routing code the processor chose: current only.
    "residence_province": [province_held],
    "residence_province_original": [old_province],
    "licence_class": [licence_class],
    "requested_class": [licence_class],
    "classes": [],  # list of strings or of records: see field_rules()
    "certificate_number": [certificate_number],
    "health_group": [health_group],
    "point_balance": [point_balance],
    "unresolved_violations": [non_negative],
    "original_partition": [non_negative],
    "original_offset": [non_negative],
    "phone": [phone],
    "reasons": [non_empty_list],
    "full_name": [not_blank],
    "record_full_name": [not_blank],
    "licence_number": [not_blank],
    "clinic_code": [not_blank],
    "residence_ward": [not_blank],
}


def field_rules(name: str, avro_type: Any) -> list[Callable[[Any], Any]]:
    """The rules for a field, by its name (and, for `classes`, by whether it holds codes or records)."""
    rules = list(_BY_NAME.get(name, []))
    if name == "classes" and isinstance(avro_type, dict) and avro_type.get("items") == "string":
        rules.append(licence_classes)
    if name.endswith("_vnd"):
        rules.append(non_negative_vnd)
    if name.endswith("_id") and name not in ("event_id", "correlation_id"):
        rules.append(not_blank)
    return rules


# ---- model rules: about several fields of one record; they name the fields in the message ----

def cccd_matches_birth_date(record: Any) -> None:
    """CCCD digit 4 = sex and century (0/1: 1900s, 2/3: 2000s, 4/5: 2100s ...), digits 5-6 = birth year mod 100."""
    born: dt.date = record.date_of_birth
    digit, yy = int(record.cccd[3]), record.cccd[4:6]
    if born.year < 1900 or digit // 2 != (born.year - 1900) // 100:
        raise fail("cccd_century", "cccd, date_of_birth: CCCD digit 4 (sex/century) does not fit the birth century"
                   " (0/1 born 1900-1999, 2/3 2000-2099, 4/5 2100-2199)")
    if yy != f"{born.year % 100:02d}":
        raise fail("cccd_birth_year", "cccd, date_of_birth: CCCD digits 5-6 must be the last two digits of the birth year")


def certificate_issued_by_clinic(record: Any) -> None:
    facility = record.certificate_number.split("/")[2]
    if facility != record.clinic_code:
        raise fail("certificate_facility", "certificate_number, clinic_code: the facility code in the certificate"
                   f" number ('{facility}') must equal clinic_code ('{record.clinic_code}')")


def health_group_covers_class(record: Any) -> None:
    """A certificate for a higher group covers a lower one (inferred, domain.md); unknown groups are not judged."""
    needed = reference.licence_classes()[record.requested_class].health_group
    if needed is not None and record.health_group < needed:
        raise fail("health_group_covers_class", f"health_group, requested_class: class '{record.requested_class}'"
                   f" needs health group {needed}, certificate is group {record.health_group}")


def expiry_after_issue(record: Any) -> None:
    if record.expires_on is not None and record.expires_on < record.issued_on:
        raise fail("expiry_after_issue", "issued_on, expires_on: a class cannot expire before it was issued")


def identity_result_consistent(record: Any) -> None:
    if record.match and record.mismatched_fields:
        raise fail("identity_result_consistent", "match, mismatched_fields: a match lists no mismatched fields")


#: (fields the record must have, rule). A rule applies to every record that has all its fields.
MODEL_RULES: list[tuple[frozenset[str], Callable[[Any], None]]] = [
    (frozenset({"cccd", "date_of_birth"}), cccd_matches_birth_date),
    (frozenset({"certificate_number", "clinic_code"}), certificate_issued_by_clinic),
    (frozenset({"health_group", "requested_class"}), health_group_covers_class),
    (frozenset({"issued_on", "expires_on"}), expiry_after_issue),
    (frozenset({"match", "mismatched_fields"}), identity_result_consistent),
]


def explain(exc: ValidationError) -> str:
    """One line naming each broken field and rule, *without* the input values (they may be PII)."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "(record)"
        parts.append(f"field '{where}' breaks rule {err['type']}: {err['msg']}")
    return "; ".join(parts)
