"""National-portal issuance sink (at-least-once, idempotent by issuance id, DLQ after N attempts) and a stand-in
portal for tests and the demo.

    from consumers.portal import IssuanceSink, StandinPortal
    with StandinPortal() as portal:
        sink = IssuanceSink(bootstrap, registry_url, portal.url).start()
        ...
        sink.stop()
"""
from consumers.portal.backoff import Backoff
from consumers.portal.client import Outcome, PortalClient
from consumers.portal.sink import IssuanceSink, SinkStats
from consumers.portal.standin import StandinPortal

__all__ = ["Backoff", "Outcome", "PortalClient", "IssuanceSink", "SinkStats", "StandinPortal"]
