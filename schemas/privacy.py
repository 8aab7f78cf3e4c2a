"""Personal data outside Kafka: exceptions logged without their message, files only their owner can read.

CCCD numbers, names, phones and health data are personal data (Law 91/2025/QH15); health data is sensitive. Log
lines never carry them whole (README, "Personal data"), and files holding them are created 0600.
"""
from __future__ import annotations

import os
import traceback
from pathlib import Path
from typing import IO

#: Mode of every file we write that holds personal data: readable and writable by its owner only.
PRIVATE_FILE_MODE = 0o600


def failure_summary(exc: BaseException, frames: int = 4) -> str:
    """An exception for a log line, without its message: its type and where it was raised, innermost first.
    A message may quote the input it failed on (a CCCD, a name: `KeyError('001085012345')`); the type and the
    place are what finds the bug, and the full text goes where personal data may be (the DLQ)."""
    stack = traceback.extract_tb(exc.__traceback__)[-frames:]
    where = " <- ".join(f"{Path(f.filename).name}:{f.lineno} in {f.name}" for f in reversed(stack))
    return f"{type(exc).__name__} at {where}" if where else type(exc).__name__


def open_private(path: str | Path, mode: str = "w", *, encoding: str | None = "utf-8", newline: str | None = None
                 ) -> IO:
    """`open(path, mode)` for a file holding personal data ("w", "a", "wb", "ab"): created 0600 from the start
    (never readable by others for a moment, whatever the umask), and made 0600 if it already existed wider."""
    path = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode.startswith("a") else os.O_TRUNC)
    fd = os.open(path, flags, PRIVATE_FILE_MODE)
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)  # O_CREAT's mode applies to new files only
        if "b" in mode:
            return os.fdopen(fd, mode)
        return os.fdopen(fd, mode, encoding=encoding, newline=newline)
    except BaseException:
        os.close(fd)
        raise


def write_private(path: str | Path, text: str) -> Path:
    """Write a whole text file holding personal data, 0600."""
    with open_private(path) as out:
        out.write(text)
    return Path(path)
