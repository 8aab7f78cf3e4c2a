"""The demo's Watch (also the faults harness's observer): a look at the bus that fails for a while (a broker hung,
the registry away) is "not yet", named in the progress line, never the end of the run."""
from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from kafka.errors import KafkaTimeoutError

from gplx_bus.commands import demo
from schemas.errors import RegistryUnavailable


def watch() -> demo.Watch:
    w = object.__new__(demo.Watch)  # no broker: only the loop of `until` and its view are exercised
    w.unreachable = None
    w.worker = SimpleNamespace(alive=lambda: True, log_tail=lambda n: "")
    w._view = lambda what: f"{what}: {w.unreachable}"
    return w


def test_transient_errors_are_looked_past_and_named_until_the_condition_holds():
    w, seen = watch(), []
    answers = [KafkaTimeoutError("hung"), RegistryUnavailable("registry away"), True]

    def condition():
        seen.append(w.unreachable)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert w.until("processing", condition, deadline=time.monotonic() + 30)
    assert seen == [None, "KafkaTimeoutError", "RegistryUnavailable"]  # each failed look is named in the view
    assert w.unreachable is None  # and forgotten once the bus answers


def test_a_bus_that_never_answers_ends_at_the_deadline_not_with_a_traceback():
    w = watch()

    def condition():
        raise KafkaTimeoutError("hung")

    started = time.monotonic()
    assert not w.until("processing", condition, deadline=time.monotonic() + 1.5)
    assert w.unreachable == "KafkaTimeoutError" and time.monotonic() - started < 10


def test_other_errors_are_not_swallowed():
    w = watch()

    def condition():
        raise ValueError("a bug")

    with pytest.raises(ValueError):
        w.until("processing", condition, deadline=time.monotonic() + 5)
