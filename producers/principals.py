"""One publisher per writing principal: on a secured cluster each event goes out under the principal the catalogue
says writes its topic (applications as User:portal, certificates as User:clinic, payments as User:payment), as the
real sources would. The demo's simulator and the secured tests publish through it."""
from __future__ import annotations

from collections import Counter
from typing import Callable

from producers.sdk import Publisher
from topology.catalogue import CLINIC, PAYMENT, PORTAL, Catalogue
from topology.connection import Connection

#: The principals whose topics the simulator writes.
SIMULATED_WRITERS = (PORTAL, CLINIC, PAYMENT)


class PrincipalPublishers:
    """The SDK `Publisher` interface (send, flush, close, context manager) over one Publisher per principal."""

    def __init__(self, login: Callable[[str], Connection], registry_url: str, catalogue: Catalogue, *,
                 principals: tuple[str, ...] = SIMULATED_WRITERS, client_id: str = "gplx-publisher") -> None:
        self.writer_of = {t.name: p for t in catalogue for p in reversed(principals) if p in t.writers}
        self.publishers = {p: Publisher(login(p), registry_url, catalogue=catalogue,
                                        client_id=f"{client_id}-{p.split(':')[1]}") for p in principals}
        self.sent: Counter = Counter()  # events sent, by principal

    def send(self, event):
        any_publisher = next(iter(self.publishers.values()))
        principal = self.writer_of[any_publisher.topic_for(event)]
        self.sent[principal] += 1
        return self.publishers[principal].send(event)

    def flush(self) -> None:
        for p in self.publishers.values():
            p.flush()

    def close(self) -> None:
        for p in self.publishers.values():
            p.close()

    def __enter__(self) -> "PrincipalPublishers":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
