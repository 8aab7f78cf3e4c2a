"""Loopback ports: free ones for tests, checked ones for fixed settings."""
from __future__ import annotations

import socket

from deploy.local.errors import LauncherError


def free_port() -> int:
    """A port the OS says is free now. Another process may take it before we bind: callers retry on conflict."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_free(port: int, what: str, setting: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise LauncherError(
                f"port {port} on 127.0.0.1 is already in use, so the {what} cannot start; "
                f"stop what holds it (`ss -ltnp 'sport = :{port}'`) or choose another port with {setting}"
            ) from None
    return port
