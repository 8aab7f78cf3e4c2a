"""Errors of the command layer, and what the CLI reports as one line (no traceback).

Every package keeps its errors in its own `errors.py` under one root, `schemas.errors.GplxError`; the CLI catches
that root (and a launcher error, which is one too) and prints the message.
"""
from __future__ import annotations

from schemas.errors import GplxError

USER_ERRORS: tuple[type[BaseException], ...] = (GplxError,)


class DemoError(GplxError):
    """The demo cannot go on (e.g. the case processor died); the CLI prints it as one line."""


class BadOutput(GplxError):
    """--output is not jsonl, table or a webhook."""
