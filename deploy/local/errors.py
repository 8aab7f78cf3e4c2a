"""Errors of the local launcher: each message names the problem and the fix, in one line."""
from __future__ import annotations

from schemas.errors import GplxError


class LauncherError(GplxError):
    """The local Kafka broker or schema registry could not be fetched, started or stopped."""
