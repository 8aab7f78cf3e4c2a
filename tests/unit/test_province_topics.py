"""Province topics carry only what a provincial office needs (README "Personal data": what each carries and why)."""
from __future__ import annotations

import json

from schemas import loader
from topology.catalogue import CASES_PROVINCE_PREFIX, Catalogue

#: Never on a province topic: the health certificate's contents, contact and postal data, the printed identity.
NOT_FOR_PROVINCES = {"health_group", "conclusions", "doctor", "clinic_code", "certificate_number", "signature",
                     "full_name", "date_of_birth", "sex", "phone", "postal_address", "licence_number",
                     "violations", "points"}


def _fields(schema: dict) -> set[str]:
    """Every field name of a record, nested records included."""
    names = set()
    for field in schema.get("fields", []):
        names.add(field["name"])
        for t in field["type"] if isinstance(field["type"], list) else [field["type"]]:
            if isinstance(t, dict):
                names |= _fields(t) | _fields(t.get("items", {}) if isinstance(t.get("items"), dict) else {})
    return names


def test_province_topics_carry_no_health_contact_or_identity_details():
    catalogue = Catalogue.build(replication_factor=1)
    province_topics = [t for t in catalogue if t.name.startswith(CASES_PROVINCE_PREFIX)]
    assert len(province_topics) == 34
    events = {e for t in province_topics for e in t.event_types}
    assert "vn.gplx.cases.IssuanceRequested" not in events  # name, birth date, address: the portal's only
    for event in events:
        leaked = _fields(json.loads(loader.event_schema_text(event))) & NOT_FOR_PROVINCES
        assert not leaked, f"{event} would put {sorted(leaked)} on every province topic"
