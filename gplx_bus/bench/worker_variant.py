"""The case-processor worker with faust settings overridden, to measure a proposed change before making it.

    GPLX_BENCH_FAUST_OVERRIDES='{"producer_linger_ms": 10}' python -m gplx_bus.bench.worker_variant

Wraps `faust.App` so that `topology.processor.app.create_app` gets the overrides on top of its own settings;
everything else is `python -m topology.processor`. Bench-only: the real change belongs in topology/processor/app.py.
"""
from __future__ import annotations

import json

import faust

from topology.connection import environment


def _patch(overrides: dict) -> None:
    original = faust.App

    class App(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, **overrides})

    faust.App = App


if __name__ == "__main__":
    _patch(json.loads(environment().get("GPLX_BENCH_FAUST_OVERRIDES") or "{}"))
    from topology.processor.__main__ import main

    main()
