"""A local PostgreSQL server for the case store, started like the broker: its own data folder, a free loopback
port, a password made for the run, stopped for sure.

`initdb` with SCRAM authentication and a random password for the superuser `gplx` (the password goes to a 0600
passfile, never to a command line), then `postgres` listening on 127.0.0.1 only (its Unix socket inside the data
folder). The database `cases` is created once the server answers. PostgreSQL refuses to run as root: as root the
server runs as the `postgres` user that Debian's package creates (deploy/debian-packages.sh installs it).

    with LocalPostgres() as pg:
        pg.url   # postgresql://gplx@127.0.0.1:PORT/cases?passfile=/tmp/.../pgpass
"""
from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from deploy.local.errors import LauncherError
from deploy.local.ports import free_port
from deploy.local.process import ManagedProcess

USER, DATABASE = "gplx", "cases"
_INSTALL = "install PostgreSQL (Debian: apt-get install -y postgresql, or bash deploy/debian-packages.sh)"


def bin_dir() -> Path:
    """The newest /usr/lib/postgresql/<version>/bin, else where `pg_config --bindir` says."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    if shutil.which("pg_config"):
        bindir = Path(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip())
        if (bindir / "initdb").exists():
            return bindir
    raise LauncherError(f"PostgreSQL's initdb was not found; {_INSTALL}")


class LocalPostgres:
    """`start()` / `stop()`, or a context manager; `url` once started."""

    def __init__(self, data_dir: Path | None = None, port: int | None = None, ready_timeout: float = 60.0,
                 tie_to_parent: bool = True) -> None:
        self._own_dir = data_dir is None
        self.base = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="gplx-pg-"))
        self.port = port
        self.ready_timeout = ready_timeout
        self.tie_to_parent = tie_to_parent
        self.process: ManagedProcess | None = None
        self.start_seconds = 0.0

    @property
    def passfile(self) -> Path:
        return self.base / "pgpass"

    @property
    def url(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{DATABASE}?passfile={self.passfile}"

    def start(self) -> "LocalPostgres":
        started = time.monotonic()
        bindir = bin_dir()
        run_as = "postgres" if os.geteuid() == 0 else None
        if run_as:
            try:
                owner = pwd.getpwnam(run_as)
            except KeyError:
                raise LauncherError(f"PostgreSQL refuses to run as root and there is no `postgres` user; "
                                    f"{_INSTALL}, or run as an ordinary user") from None
            os.chmod(self.base, 0o711)  # the server's user may pass through, not list
        pgdata, init_pw = self.base / "pgdata", self.base / "initpw"
        pgdata.mkdir(mode=0o700)
        password = secrets.token_urlsafe(24)
        fd = os.open(init_pw, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, password.encode() + b"\n")
        os.close(fd)
        if run_as:
            for path in (pgdata, init_pw):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        init = subprocess.run([str(bindir / "initdb"), "-D", str(pgdata), "-U", USER, "--auth=scram-sha-256",
                               f"--pwfile={init_pw}", "-E", "UTF8", "--no-locale", "--no-sync"],
                              capture_output=True, text=True, user=run_as)
        init_pw.unlink()
        if init.returncode != 0:
            tail = (init.stderr or init.stdout).strip().splitlines()[-1:] or ["no output"]
            raise LauncherError(f"initdb failed: {tail[0]}")
        fd = os.open(self.passfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, f"127.0.0.1:*:*:{USER}:{password}\n".encode())
        os.close(fd)
        for attempt in range(3):  # a free port may be taken before the server binds it
            self.port = self.port or free_port()
            self.process = ManagedProcess(
                "postgres", [str(bindir / "postgres"), "-D", str(pgdata), "-p", str(self.port),
                             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={pgdata}",
                             "-c", "max_connections=100", "-c", "shared_buffers=128MB"],
                self.base / "postgres.log", tie_to_parent=self.tie_to_parent, user=run_as).start()
            if self._wait_ready():
                break
            self.process.stop()
            self.port = None
        else:
            raise LauncherError(f"PostgreSQL did not start; see {self.base / 'postgres.log'}")
        self.start_seconds = time.monotonic() - started
        return self

    def _wait_ready(self) -> bool:
        import psycopg

        base_url = self.url.replace(f"/{DATABASE}?", "/postgres?")
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline and self.process.alive():
            try:
                with psycopg.connect(base_url, autocommit=True, connect_timeout=2) as conn:
                    conn.execute(f"CREATE DATABASE {DATABASE}")
                return True
            except psycopg.OperationalError:
                time.sleep(0.1)  # polling the server's readiness
        return False

    def stop(self) -> None:
        """SIGINT first: PostgreSQL's fast shutdown (SIGTERM waits for every client to leave)."""
        if self.process is not None:
            if self.process.alive():
                os.kill(self.process.pid, signal.SIGINT)
                try:
                    self.process.popen.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    pass
            self.process.stop()
            self.process = None
        if self._own_dir:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> "LocalPostgres":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
