"""Deterministic ids (UUID version 5).

Why: an answer, a refund or a re-imported certificate must get the *same* event id every time it is produced, so
that a re-delivery after a crash (at-least-once) is recognised downstream as the same fact, not a new one.
"""
from __future__ import annotations

import uuid

#: Namespace of every id this package derives; fixed forever (changing it would change every derived id).
NAMESPACE = uuid.UUID("6f1f3c2e-3b7a-5e55-9c1d-0a6b7e9d2c41")


def derived_id(kind: str, *parts: object) -> str:
    """A UUID fixed by `kind` (e.g. "identity-answer") and the parts (e.g. the request's event id)."""
    return str(uuid.uuid5(NAMESPACE, "|".join([kind, *(str(p) for p in parts)])))
