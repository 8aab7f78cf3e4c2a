"""Errors the CLI reports as one line (no traceback).

Each code package has its own base error so it need not import the others; this tuple collects them.
"""
from deploy.local.errors import LauncherError
from topology.connection import SettingsError

USER_ERRORS: tuple[type[BaseException], ...] = (LauncherError, SettingsError)

try:  # the contracts package adds its own base error once it exists
    from schemas.errors import GplxError

    USER_ERRORS += (GplxError,)
except ImportError:  # pragma: no cover - during bootstrap only
    pass
