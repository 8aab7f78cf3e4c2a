"""Fetches the Kafka broker jars from Maven Central once and caches them outside git.

The cache lives in `$GPLX_HOME/jars/kafka-<version>/` and is marked complete only after Maven succeeded,
so an interrupted download is retried rather than half-used.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from deploy.local.errors import LauncherError
from deploy.local.settings import gplx_home, kafka_version, maven_args
from deploy.local.tools import require_maven

POM = Path(__file__).with_name("pom.xml")
_COMPLETE = ".complete"


def logging_profile(version: str) -> str:
    """Kafka 3.x logs through the log4j 1 API (reload4j); 4.x through log4j2."""
    return "log-reload4j" if int(version.split(".")[0]) < 4 else "log-log4j2"


def kafka_lib_dir(version: str | None = None) -> Path:
    version = version or kafka_version()
    return gplx_home() / "jars" / f"kafka-{version}"


def ensure_kafka_jars(version: str | None = None) -> Path:
    """Directory holding every jar of the broker, fetched now if not cached yet."""
    version = version or kafka_version()
    lib = kafka_lib_dir(version)
    if (lib / _COMPLETE).exists():
        return lib
    mvn = require_maven()
    lib.mkdir(parents=True, exist_ok=True)
    print(f"fetching Apache Kafka {version} from Maven Central (first run only)...", file=sys.stderr)
    cmd = [
        mvn, "-q", "-B", *maven_args(), "-f", str(POM), f"-Dkafka.version={version}", f"-P{logging_profile(version)}",
        "dependency:copy-dependencies", f"-DoutputDirectory={lib}",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise LauncherError(_explain_maven_failure(version, result.stdout + result.stderr))
    (lib / _COMPLETE).write_text(version)
    return lib


def _explain_maven_failure(version: str, output: str) -> str:
    lowered = output.lower()
    if "could not resolve" in lowered or "could not transfer" in lowered or "unknownhost" in lowered:
        if "not found" in lowered and "could not find artifact" in lowered:
            return f"Kafka {version} is not on Maven Central; set GPLX_KAFKA_VERSION to a released version (e.g. 4.1.1 or 3.9.1)"
        return (f"Maven could not download org.apache.kafka:kafka_2.13:{version}; is Maven Central reachable "
                f"(proxy settings in ~/.m2/settings.xml)? retry: mvn -f {POM} dependency:copy-dependencies")
    last = [line for line in output.splitlines() if "ERROR" in line][:1]
    return f"Maven failed to fetch Kafka {version}: {last[0] if last else output.strip()[-200:]}"
