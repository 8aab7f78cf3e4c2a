"""Errors of the topology package (catalogue, connection settings, topic/ACL apply, rules, calendar).

All are `GplxError`s (schemas/errors.py is the root), so the CLI prints them as one line and no command catches
`ValueError` itself. `SettingsError` and `RuleSetError` are also `ValueError`s, as they were before, so argument
checks written against `ValueError` keep working.
"""
from __future__ import annotations

from schemas.errors import GplxError, PermanentError


class SettingsError(GplxError, ValueError):
    """A bad setting (connection, catalogue, lag monitor, backoff, credentials...); the message is one line naming
    the setting (and the file) and the fix."""


class RuleSetError(PermanentError, ValueError):
    """The rule data is malformed (a bug in topology/data, not in the input)."""


class TopologyError(GplxError):
    """A refused change or an unreachable broker; the message is one line naming the problem and the fix."""


class CalendarError(PermanentError):
    """A swap file is malformed (the message names the file and the fix)."""
