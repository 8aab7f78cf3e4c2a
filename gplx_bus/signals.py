"""How a long-running command waits for SIGTERM or Ctrl-C.

Why a timed wait: a signal may be delivered to any thread of the process; CPython runs the Python handler only
in the main thread, when it next runs bytecode. A main thread parked in an untimed `Event.wait()` may never get
there (seen: `lag serve` ignoring SIGTERM while its Kafka threads were busy), so it wakes up a few times a second.
"""
from __future__ import annotations

import signal
import threading


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT; install it before saying "ready", so an early signal is not lost."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


def wait_until_set(stop: threading.Event, *, tick_s: float = 0.2) -> None:
    while not stop.wait(tick_s):
        pass
