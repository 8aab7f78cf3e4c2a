"""The two records the sink writes when it gives up on an issuance: a DeadLetter and an IssuanceDeliveryFailed.

Why both: the DeadLetter (dlq topic) keeps the original bytes and position so an SRE can re-drive the request once
the portal works; the IssuanceDeliveryFailed (cases.events and the province's topic) makes the case itself show
that its licence was not handed over, so the province sees it without reading the DLQ.

Ids are derived, not random: the dead letter's from the record's position, the failure event's from the issuance
id. If the sink crashes after writing them but before committing, the copies it writes again carry the same ids.
"""
from __future__ import annotations

import datetime as dt
import socket
import uuid

from schemas import models
from topology.connection import environment

NAMESPACE = uuid.UUID("a4e3b9c2-6f0d-4d7b-8c1e-5a2f9b3d7e60")  # fixed forever: ids must survive upgrades
SOURCE = {"system": "portal-sink", "instance": environment().get("GPLX_INSTANCE", socket.gethostname())}


def dead_letter(record, *, error_code: str, error_text: str, correlation_id: str | None,
                now: dt.datetime) -> models.DeadLetter:
    """The DLQ envelope of a consumer record (topic, partition, offset, original key and value bytes)."""
    return models.DeadLetter(
        event_id=str(uuid.uuid5(NAMESPACE, f"dlq/{record.topic}/{record.partition}/{record.offset}")),
        occurred_at=now, source=SOURCE, correlation_id=correlation_id,
        original_topic=record.topic, original_partition=record.partition, original_offset=record.offset,
        original_key=record.key, original_value=record.value or b"",
        error_code=error_code, error_text=error_text[:1000], first_seen_at=now,
    )


def delivery_failed(issuance: models.IssuanceRequested, *, attempts: int, last_error: str,
                    now: dt.datetime) -> models.IssuanceDeliveryFailed:
    return models.IssuanceDeliveryFailed(
        event_id=str(uuid.uuid5(NAMESPACE, f"{issuance.issuance_id}/delivery-failed")),
        occurred_at=now, source=SOURCE, correlation_id=issuance.case_id,
        case_id=issuance.case_id, cccd=issuance.cccd, province=issuance.province,
        issuance_id=issuance.issuance_id, attempts=attempts, last_error=last_error[:500],
    )
