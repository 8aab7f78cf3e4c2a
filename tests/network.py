"""Is a port reachable from elsewhere? This machine's non-loopback addresses, and a connect that tells."""
from __future__ import annotations

import ipaddress
import socket


def non_loopback_addresses() -> list[str]:
    """This machine's IPv4 addresses outside 127.0.0.0/8: its host name's, and the one its default route leaves
    from (a UDP connect picks it without sending anything)."""
    found: set[str] = set()
    try:
        found.update(info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET))
    except OSError:
        pass
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only the route matters
            found.add(probe.getsockname()[0])
        except OSError:
            pass
    return sorted(a for a in found if not ipaddress.ip_address(a).is_loopback and not ipaddress.ip_address(
        a).is_unspecified)


def accepts(address: str, port: int, timeout: float = 2.0) -> bool:
    """True if a TCP connection to address:port is accepted."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect((address, port))
            return True
        except OSError:  # refused, or dropped until the timeout: not reachable either way
            return False
