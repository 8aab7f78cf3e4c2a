"""kafka-python clients made so that a broker that does not answer leaves nothing behind.

Why: kafka-python 3 starts a client's network thread (`kafka-io-<client_id>`) before it bootstraps, and when the
bootstrap fails (`KafkaTimeoutError`, `NoBrokersAvailable`) the constructor raises with that thread still running:
the caller has no client to close. Every failed attempt of a retry loop (the launcher waiting for a broker, the lag
exporter through an outage) left one idle thread and its sockets for good: 35 in one 30-minute soak's harness
(session 9). `new_client(cls, **configs)` closes the half-made client before the error goes on.
"""
from __future__ import annotations

import logging
from typing import Any, TypeVar

log = logging.getLogger(__name__)

Client = TypeVar("Client")


def new_client(cls: type[Client], *topics: str, **configs: Any) -> Client:
    """`cls(*topics, **configs)` (KafkaAdminClient, KafkaConsumer), its network thread stopped if it raises.
    (KafkaProducer starts its thread only after the bootstrap: nothing to stop.)"""
    client = cls.__new__(cls)
    try:
        client.__init__(*topics, **configs)
    except BaseException:
        _close_half_made(client)
        raise
    return client


def _close_half_made(client: Any) -> None:
    """Close the connections and stop the IO thread (kafka-python's compat client owns both; it exists once the
    thread does). Its stop wakes the thread's select loop and joins it: short, the thread does nothing else."""
    inner = getattr(client, "_client", None)
    if inner is None:
        return
    try:
        inner.close()
    except Exception:  # noqa: BLE001 - the constructor's own error is the one to report; this one says we leaked
        log.debug("closing a half-made %s failed", type(client).__name__, exc_info=True)
