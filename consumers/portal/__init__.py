"""National-portal issuance sink (at-least-once, idempotent by issuance id, DLQ after N attempts) and a stand-in
portal for tests and the demo.

    from consumers.portal import IssuanceSink, StandinPortal
    with StandinPortal() as portal:  # generates its key: portal.credentials
        sink = IssuanceSink(bootstrap, registry_url, portal.url, credentials=portal.credentials).start()
        ...
        sink.stop()
"""
from consumers.backoff import Backoff
from consumers.portal.client import Outcome, PortalClient
from consumers.portal.signing import PortalCredentials, read_secret_file, write_secret_file
from consumers.portal.sink import IssuanceSink, SinkStats
from consumers.portal.standin import StandinPortal

__all__ = ["Backoff", "Outcome", "PortalClient", "PortalCredentials", "IssuanceSink", "SinkStats", "StandinPortal",
           "read_secret_file", "write_secret_file"]
