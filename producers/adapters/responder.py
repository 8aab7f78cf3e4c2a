"""The request/answer act shared by the identity, police and payment adapters, on the shared consume loop.

Why at-least-once with commit-after-publish: an answer must never be lost (a case would wait for it until its
deadline), so the request's offset is committed only after the broker acknowledged the answer. A crash between the
two re-delivers the request; the answer is then produced again with the *same* deterministic event id, and the
case processor drops it as a duplicate. Exactly-once transactions would buy nothing more here.

This file is the responder's act (answer a request, publish the answers) and its wiring; the rest is
`consumers.loop`: an undecodable request, or one of another type, is dead-lettered (the case processor, the only
writer of request topics, has a bug: say so in the DLQ and move on, blocking the partition would starve every
other citizen's case); a registry or broker outage is waited out, the requests re-read, never skipped; a request
the handler fails on is dead-lettered as PROCESSING_FAILED.

One loop (one thread, one consumer: KafkaConsumer is not thread-safe) per adapter; the Publisher is shared.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from consumers.loop import ConsumeLoop, LoopStats
from producers.errors import PublishError
from producers.sdk import Publisher
from schemas.errors import TransientError
from schemas.models import Event
from schemas.serde import SchemaRegistry
from topology.connection import Connection

log = logging.getLogger(__name__)

#: handle(request) -> the answers to publish (an empty list: nothing to say, e.g. a refund already done).
Handler = Callable[[Event], list[Event]]


@dataclass
class ResponderStats:
    """Counters for tests and the demo (no PII)."""

    requests: int = 0
    answers: int = 0
    loop: LoopStats | None = None

    @property
    def skipped(self) -> int:  # dead-lettered: undecodable, unexpected type, or the handler failed on it
        return self.loop.dead_lettered if self.loop else 0

    @property
    def retries(self) -> int:  # batches re-read because an answer could not be published
        return self.loop.retries if self.loop else 0

    @property
    def errors(self) -> list[str]:
        return self.loop.errors if self.loop else []


class AnswersNotPublished(TransientError):
    """The answers of a request could not be published (broker away, delivery timeout): re-read it later."""


class Responder:
    """Consume `request_topic` in `group_id`, answer each request with `handle`, publish, then commit."""

    def __init__(self, name: str, *, bootstrap_servers: str | Connection, registry: SchemaRegistry,
                 publisher: Publisher, request_topic: str, group_id: str, handle: Handler,
                 request_type: type[Event], dlq_topic: str,
                 on_published: Callable[[Event, list[Event]], None] | None = None,
                 connect_timeout_s: float = 10.0, retry_backoff_s: float = 2.0) -> None:
        from consumers.backoff import Backoff

        self.name = name
        self.request_topic = request_topic
        self.group_id = group_id
        self._publisher = publisher
        self._handle = handle
        self._on_published = on_published
        self._unsettled: dict[str, object] = {}  # answer event id -> its delivery, until acknowledged
        self.loop = ConsumeLoop(
            name, connection=bootstrap_servers, registry=registry, topic=request_topic, group_id=group_id,
            act=self.act, expects=request_type, dlq_topic=dlq_topic, client_id=f"gplx-{name}-adapter",
            source={"system": f"{name}-adapter", "instance": "gplx-adapters"}, max_poll_records=200,
            backoff=Backoff(base_s=retry_backoff_s, max_s=max(retry_backoff_s, 30.0), jitter=0.2),
            connect_timeout_s=connect_timeout_s)
        self.stats = ResponderStats(loop=self.loop.stats)

    # ---- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect (in the caller's thread, so an unreachable broker is a clear error here) and start polling."""
        self.loop.start()
        log.info("%s adapter consuming %s as group %s", self.name, self.request_topic, self.group_id)

    def stop(self, timeout_s: float = 15.0) -> None:
        self.loop.stop(timeout_s)

    @property
    def running(self) -> bool:
        return self.loop.running

    # ---- the act ---------------------------------------------------------------------------------------------

    def act(self, record, request: Event) -> list:
        """Answer one request: publish its answers (once per answer id until acknowledged: a request delivered
        twice in one batch gets the same answer) and hand back the deliveries the loop waits for."""
        self.stats.requests += 1
        answers = self._handle(request)
        try:
            deliveries = [self._publish(a) for a in answers]
        except PublishError as exc:
            self._unsettled.clear()
            raise AnswersNotPublished(f"{self.name} adapter could not publish answers ({exc})") from None
        return [_Settled(self, request, answers, deliveries)]

    def _publish(self, answer: Event):
        if answer.event_id not in self._unsettled:
            self._unsettled[answer.event_id] = self._publisher.send(answer)
            self.stats.answers += 1
        return answer.event_id, self._unsettled[answer.event_id]


class _Settled:
    """What the loop waits for before committing a request: its answers acknowledged, then on_published."""

    def __init__(self, responder: Responder, request: Event, answers: list[Event], deliveries: list) -> None:
        self._responder, self._request, self._answers, self._deliveries = responder, request, answers, deliveries

    def result(self) -> None:
        unsettled = self._responder._unsettled
        try:
            for _, delivery in self._deliveries:
                delivery.result()  # the broker's acknowledgement
        except PublishError as exc:
            unsettled.clear()
            raise AnswersNotPublished(f"{self._responder.name} adapter: answers not acknowledged ({exc})") from None
        for event_id, _ in self._deliveries:
            unsettled.pop(event_id, None)
        if self._responder._on_published is not None:
            self._responder._on_published(self._request, self._answers)
