"""The catalogue's event contracts in the schema registry: which subjects exist, registering them, checking them.

Only the operator registers (`gplx-bus schemas register`, run with the registry's write access); every other client
(producer SDK, adapters, case processor, issuance sink, subscribers) only looks ids up, so it works against a
registry it cannot write to, and a contract that was never registered fails at once with `SchemaNotRegistered`
naming the subject and the command that fixes it, instead of a client quietly adding a version of its own.

Subjects follow TopicRecordNameStrategy (`<topic>-<record full name>`, see `schemas.serde`): a subject exists
exactly where the catalogue lets an event travel.
"""
from __future__ import annotations

import logging

from schemas import compat, loader
from schemas.errors import RegistryUnavailable, SchemaNotFound, SchemaNotRegistered
from schemas.serde import SchemaRegistry, subject_name
from topology.catalogue import CASES_PROVINCE_PREFIX, Catalogue

log = logging.getLogger(__name__)


def subjects(catalogue: Catalogue, *, writer: str | None = None) -> list[tuple[str, str]]:
    """(subject, event full name) for every event on every catalogued topic (only those `writer` may write)."""
    known = set(loader.event_names())
    return [(subject_name(topic.name, event), event)
            for topic in catalogue if writer is None or writer in topic.writers
            for event in topic.event_types if event in known]


def register(registry, catalogue: Catalogue, level: str = compat.LEVEL) -> list[tuple[str, int]]:
    """Register every contract of the catalogue and set each subject's compatibility level: the operator's job.
    Returns (subject, schema id) pairs. Idempotent: an identical schema keeps its id and version."""
    done = []
    for subject, event in subjects(catalogue):
        done.append((subject, registry.register(subject, loader.event_schema_text(event))))
        registry.set_compatibility(subject, level)
    return done


def check_registered(registry: SchemaRegistry, catalogue: Catalogue, *, writer: str, outage_ok: bool = False) -> int:
    """Look up every subject `writer` writes (no registration); SchemaNotRegistered names the first missing one.
    For a client to refuse to start rather than fail at its first record. Returns how many were found.

    Province topics are left out: a deployment may run only some of the catalogue's 34 (the demo, a pilot), and
    checking all would take 34 x 6 look-ups at every start; a missing one fails at its first case instead.
    `outage_ok`: an unreachable registry is logged and the check skipped (for services that wait a registry
    outage out at their first record anyway); otherwise RegistryUnavailable is raised."""
    province = catalogue.prefix + CASES_PROVINCE_PREFIX
    found = [(subject, event) for subject, event in subjects(catalogue, writer=writer)
             if not subject.startswith(province)]
    for subject, event in found:
        try:
            registry.lookup(subject, loader.event_schema_text(event))
        except SchemaNotFound:
            raise SchemaNotRegistered(subject) from None
        except RegistryUnavailable as exc:
            if not outage_ok:
                raise
            log.warning("could not check the contracts of %s in the registry (%s); going on", writer, exc)
            return 0
    return len(found)
