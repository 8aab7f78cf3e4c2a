"""Child processes we start (broker, registry, workers): started in their own process group, stopped for sure.

Stopping sends SIGTERM to the whole group, waits, then SIGKILL: a hung JVM must not outlive the tests.
Processes tied to their parent also get PR_SET_PDEATHSIG, so even a SIGKILLed test run leaves nothing behind.
PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, not the process; so tied children are
forked from one long-lived spawner thread, whatever thread asks for them.
Every command line carries a `-Dgplx.run=<id>` marker, so `gplx-bus local down` signals only processes that are
still ours (a pid recorded earlier may have been recycled).
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gplx-spawner")


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class ManagedProcess:
    """A subprocess with its output in a log file."""

    name: str
    cmd: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    tie_to_parent: bool = True
    user: str | None = None  # run as this user (PostgreSQL refuses to run as root)
    popen: subprocess.Popen | None = None

    def start(self) -> "ManagedProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            spawn = lambda: subprocess.Popen(  # noqa: E731
                self.cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env},
                start_new_session=True,
                preexec_fn=_die_with_parent if self.tie_to_parent else None,
                user=self.user,
            )
            self.popen = _SPAWNER.submit(spawn).result() if self.tie_to_parent else spawn()
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 20.0) -> str:
        """Stop the process group: 'terminated' (SIGTERM sufficed), 'killed' (needed SIGKILL) or 'gone'."""
        if self.popen is None:
            return "gone"
        return stop_pid(self.popen.pid, timeout, reap=self.popen.wait)


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1][:1] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def stop_pid(pid: int, timeout: float = 20.0, reap=None) -> str:
    """SIGTERM the process group of `pid`, then SIGKILL it after `timeout` seconds."""
    if not pid_alive(pid):
        if reap:
            reap()
        return "gone"
    _signal_group(pid, signal.SIGTERM)
    if _wait_gone(pid, timeout, reap):
        return "terminated"
    _signal_group(pid, signal.SIGKILL)
    _signal_group(pid, signal.SIGCONT)  # a stopped (SIGSTOP) process still dies of SIGKILL; this is belt and braces
    if not _wait_gone(pid, 10.0, reap):
        raise RuntimeError(f"process {pid} survived SIGKILL")
    return "killed"


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(os.getpgid(pid), sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _wait_gone(pid: int, timeout: float, reap) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if reap is not None:
            try:
                reap(timeout=0.1)
                return True
            except subprocess.TimeoutExpired:
                continue
        if not pid_alive(pid):
            return True
        time.sleep(0.05)  # polling a condition, not waiting for luck
    return False


def cmdline(pid: int) -> str:
    """The command line of a process ('' once it is gone): tells our processes from a recycled pid."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""
