"""Errors of the local launcher: each message names the problem and the fix, in one line."""


class LauncherError(Exception):
    """The local Kafka broker or schema registry could not be fetched, started or stopped."""
