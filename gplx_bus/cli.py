"""The `gplx-bus` console script: the composition root.

The command layer is thin on purpose: each sub-command lives in `gplx_bus/commands/<name>.py` and calls into the
four code packages. Known problems (bad argument, missing tool, unreachable broker) are printed as one line naming
the problem and the fix, never as a traceback; `--debug` or GPLX_DEBUG=1 shows the traceback for developers.
"""
from __future__ import annotations

import os
import sys

import typer
from kafka.errors import KafkaError

from gplx_bus import commands
from gplx_bus.commands import options
from gplx_bus.errors import USER_ERRORS
from topology.diagnose import CONNECT_ERRORS, cannot_reach

app = typer.Typer(
    name="gplx-bus",
    help="Event bus for the online renewal of Vietnamese driving licences (đổi GPLX) on Apache Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
commands.register(app)


def main() -> None:
    """Run the CLI; turn known errors into a one-line message and a non-zero exit."""
    debug = os.environ.get("GPLX_DEBUG") == "1"
    try:
        app()
    except USER_ERRORS as exc:
        if debug:
            raise
        print(f"gplx-bus: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KafkaError as exc:  # a Kafka client of ours gave up (broker down, timeout): one line, never its traceback
        if debug:
            raise
        if isinstance(exc, CONNECT_ERRORS) and options.last_connection is not None:
            print(f"gplx-bus: error: {cannot_reach(options.last_connection)}", file=sys.stderr)
        else:
            print(f"gplx-bus: error: Kafka: {type(exc).__name__}: {exc}; is the broker up and reachable? Check "
                  f"--bootstrap-servers / KAFKA_BOOTSTRAP_SERVERS (locally: gplx-bus local status)", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("gplx-bus: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
