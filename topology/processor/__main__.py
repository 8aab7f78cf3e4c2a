"""`python -m topology.processor`: run one case-processor worker with settings from the environment."""
from __future__ import annotations

import gc
import logging
import sys

from faust import Worker

from schemas.errors import GplxError
from topology import catalogue as topics
from topology.apply import missing_topics
from topology.catalogue import Catalogue
from topology.connection import environment
from topology.errors import TopologyError
from topology.processor.app import create_app
from topology.processor.settings import ProcessorSettings


def main(settings: ProcessorSettings | None = None) -> None:
    """Run a worker with `settings` (the CLI builds them), by default those of the process environment."""
    settings = settings or ProcessorSettings.from_env(environment())
    require_topics(settings)  # TopologyError: one line from the CLI, and below
    settings.datadir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    # What is alive now (modules, schemas, rules, faust's app: ~117,000 objects) lives as long as the worker: out of
    # the collector's reach, so that its full collections scan only what the work allocates. Measured at 100
    # cases/s: three full collections in 20 s stopped the loop for up to 86 ms each, delaying every case in
    # flight; a full collection of those objects costs ~72 ms of CPU, ~0 frozen. Garbage first: frozen is never
    # freed.
    gc.collect()
    gc.freeze()
    level = environment().get("GPLX_LOG_LEVEL", "info")
    logging.getLogger("gplx").setLevel(level.upper())
    for noisy in ("aiokafka", "kafka"):  # their debug records cost ~5% CPU when built and dropped
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # faust logs every send at debug and its loggers are debug-enabled whatever the worker's level: ~4% CPU
    # building records that no handler prints. Its own info lines (rebalance, recovery) stay.
    for chatty in ("faust", "mode"):
        logging.getLogger(chatty).setLevel(max(logging.INFO, logging.getLevelName(level.upper())))
    Worker(app, loglevel=level, quiet=True).execute_from_commandline()


def require_topics(settings: ProcessorSettings) -> None:
    """Every topic the worker reads (its inputs, clinics.keys, its tables' changelogs) must exist before it
    starts: faust may not create them (`topic_allow_declare=False`, see Catalogue.internal), and a missing one
    would only show as a worker that never processes its partitions. (A missing output topic stops the worker at
    its first write to it: `_crash_on_failure`.)"""
    catalogue = Catalogue.build(prefix=settings.prefix, input_partitions=settings.input_partitions,
                                replication_factor=1)  # names only
    mine = [t.name for t in catalogue.managed if topics.CASE_PROCESSOR in t.readers]
    missing = missing_topics(settings.connection, mine)
    if missing:
        raise TopologyError(f"{len(missing)} of its {len(mine)} topics missing ({', '.join(missing[:3])}"
                            f"{', ...' if len(missing) > 3 else ''}): create them with `gplx-bus topics apply"
                            f"{' --prefix ' + settings.prefix if settings.prefix else ''}`")


if __name__ == "__main__":
    try:
        main()
    except GplxError as exc:
        sys.exit(f"case processor: {exc}")  # one line, exit status 1
