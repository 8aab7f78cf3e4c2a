"""Errors of the consumers package (DLQ tools, subscriber, portal sink), each a `GplxError` (schemas/errors.py is
the root) that the CLI prints as one line. Retry or not is said by the base: `TransientError` / `PermanentError`.
"""
from __future__ import annotations

from schemas.errors import GplxError, PermanentError, TransientError
from topology.errors import SettingsError


class DlqError(GplxError):
    """The DLQ cannot be read or a replay cannot be done (message names the cause and the fix)."""


class WebhookFailed(GplxError):
    """The webhook did not accept an event after every retry (or refused it outright)."""


class TopicNotReadable(PermanentError):
    """The province's topic is not visible to this login: it does not exist, or the ACLs do not let it read."""


class UnknownProvince(GplxError):
    """The code is neither a current nor an old province code."""


class SecretFileError(SettingsError):
    """The secret file is missing, unreadable or too short; the message names the file, never its content."""


class ReadTimedOut(TransientError):
    """Reading a topic to its end took longer than allowed (broker away, or the topic not readable)."""


class KeysError(SettingsError):
    """The status API's keys file is bad, or a principal is not one it knows; one line (consumers/casestore)."""


class DatabaseError(GplxError, ValueError):
    """The case store's database URL is bad or the database cannot be reached; one line naming the setting and
    the fix (consumers/casestore)."""
