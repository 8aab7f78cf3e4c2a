"""Benchmarks of the bus, each measured against ceilings taken in the same run (`gplx-bus bench`, `make bench`).

One module per subject: `run` (the whole-bus benchmark and its JSON), `bus_env` (broker, topics, workload),
`ceilings`, `processor_runs`, `sdk_runs`, `scale` (`make bench-scale`), `bench_serde`. Not tests: nothing here is
asserted; `tests/integration/test_bench_smoke.py` runs the quick version.
"""
