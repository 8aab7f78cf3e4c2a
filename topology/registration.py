"""The registry subjects the catalogue implies, and registering them: what `gplx-bus schemas register` and the
demo both do.

Subjects follow TopicRecordNameStrategy (`<topic>-<record full name>`); the topics and the events each carries
come from the catalogue, so a subject exists exactly where an event can travel. Here rather than in `schemas`:
the contracts package does not know the catalogue.
"""
from __future__ import annotations

from schemas import compat, loader
from schemas.serde import subject_name
from topology.catalogue import Catalogue


def subjects(catalogue: Catalogue) -> list[tuple[str, str]]:
    """(subject, event full name) for every event with a contract on every catalogued topic."""
    known = set(loader.event_names())
    return [(subject_name(topic.name, event), event)
            for topic in catalogue for event in topic.event_types if event in known]


def register_all(client, catalogue: Catalogue, *, level: str = compat.LEVEL) -> list[tuple[str, int]]:
    """Register every subject's schema and set its compatibility level; (subject, schema id) per subject."""
    out = []
    for subject, event in subjects(catalogue):
        schema_id = client.register(subject, loader.event_schema_text(event))
        client.set_compatibility(subject, level)
        out.append((subject, schema_id))
    return out
