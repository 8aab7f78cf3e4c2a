"""`python -m topology.processor`: run one case-processor worker with settings from the environment."""
from __future__ import annotations

import logging

from faust import Worker

from topology.connection import environment
from topology.processor.app import create_app
from topology.processor.settings import ProcessorSettings


def main(settings: ProcessorSettings | None = None) -> None:
    """Run a worker with `settings` (the CLI builds them), by default those of the process environment."""
    settings = settings or ProcessorSettings.from_env(environment())
    settings.datadir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    level = environment().get("GPLX_LOG_LEVEL", "info")
    logging.getLogger("gplx").setLevel(level.upper())
    for noisy in ("aiokafka", "kafka"):  # their debug records cost ~5% CPU when built and dropped
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # faust logs every send at debug and its loggers are debug-enabled whatever the worker's level: ~4% CPU
    # building records that no handler prints. Its own info lines (rebalance, recovery) stay.
    for chatty in ("faust", "mode"):
        logging.getLogger(chatty).setLevel(max(logging.INFO, logging.getLevelName(level.upper())))
    Worker(app, loglevel=level, quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
