"""The status API under uvicorn in a thread: the socket is bound first (so a port in use fails at once, and
port 0 gives a free one), then served until `stop()`."""
from __future__ import annotations

import socket
import threading
import time

import uvicorn

from consumers.casestore.api import create_app
from consumers.casestore.auth import Keys
from consumers.casestore.db import Database
from topology.catalogue import CASES_EVENTS


class ApiServer:
    def __init__(self, db: Database, prefix: str, keys: Keys, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = create_app(db, prefix + CASES_EVENTS, keys)
        self.host, self.port = host, port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> "ApiServer":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name="gplx-status-api", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the status API did not start")
            time.sleep(0.02)  # polling uvicorn's started flag
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
