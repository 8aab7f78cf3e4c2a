"""The record the sink writes next to its DeadLetter (built by `schemas.deadletter`) when it gives up on an
issuance: an IssuanceDeliveryFailed.

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
from schemas.deadletter import NAMESPACE
from topology.connection import environment

SOURCE = {"system": "portal-sink", "instance": environment().get("GPLX_INSTANCE", socket.gethostname())}


def delivery_failed(issuance: models.IssuanceRequested, *, attempts: int, last_error: str,
                    now: dt.datetime | None = None) -> models.IssuanceDeliveryFailed:
    return models.IssuanceDeliveryFailed(
        event_id=str(uuid.uuid5(NAMESPACE, f"{issuance.issuance_id}/delivery-failed")),
        occurred_at=now or dt.datetime.now(dt.timezone.utc), source=SOURCE, correlation_id=issuance.case_id,
        case_id=issuance.case_id, cccd=issuance.cccd, province=issuance.province,
        issuance_id=issuance.issuance_id, attempts=attempts, last_error=last_error[:500],
    )
