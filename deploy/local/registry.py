"""Local schema registry: Apicurio Registry and its Confluent-compatible API (``/apis/ccompat/v7``).

The registry comes from Maven Central as Apicurio's own ready-to-run Quarkus distribution
(``io.apicurio:apicurio-registry-app:<version>:tar.gz:all``); ``deploy/local/registry/pom.xml``
fetches it once into ``~/.m2`` and unpacks it into the user cache, so no Quarkus build and no
container are needed. Only ``mvn`` and Java 17+ are required.

Version 3.0.9 is the newest 3.x that runs on Java 17 (3.3.x is compiled for Java 21).
Storage is an embedded H2 file database under the caller's ``data_dir``: schema ids survive a
restart as long as ``data_dir`` is kept (records in a kept Kafka log stay decodable), and
deleting ``data_dir`` gives a fresh registry.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from deploy.local.errors import LauncherError

REGISTRY_VERSION: str = os.environ.get("GPLX_REGISTRY_VERSION", "3.0.9")
CCOMPAT_PATH = "/apis/ccompat/v7"
# Readiness of the database and of the registry's own checks; 200 only once requests will work.
REGISTRY_HEALTH_PATH: str = "/health/ready"

POM = Path(__file__).resolve().parent / "registry" / "pom.xml"
MIN_JAVA = 17
BUILD_TIMEOUT_S = 1800  # a ~110 MB download on a slow link

# Runnable jar of the distribution, by release line: 2.6.x/3.0.x ship a legacy "-runner.jar",
# 3.1+ ship a fast-jar ("quarkus-run.jar", at the top of the tarball or under quarkus-app/).
_JAR_PATTERNS = ("*-runner.jar", "quarkus-run.jar", "quarkus-app/quarkus-run.jar")


def _find_jar(build_dir: Path) -> Path | None:
    for pattern in _JAR_PATTERNS:
        for jar in sorted(build_dir.glob(pattern)):
            if jar.is_file():
                return jar
    return None


def _java_major(java: str) -> int | None:
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def _mvn_error(output: str) -> str:
    """The most telling line of a failed Maven run, without colour codes."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in output.splitlines()]
    errors = [line.removeprefix("[ERROR]").strip() for line in lines if line.startswith("[ERROR]")]
    errors = [e for e in errors if e and not e.startswith(("To see the full", "Re-run Maven", "For more information", "[Help"))]
    text = (errors or [line for line in lines if line] or ["no output"])[0]
    text = re.sub(r"^Failed to execute goal .*? on project [^:]+: ", "", text).replace(" -> [Help 1]", "")
    return text if len(text) <= 400 else text[:400] + "..."


def ensure_registry_built(cache_dir: Path) -> Path:
    """Fetch and unpack the registry once into ``cache_dir/registry-<version>``; return its runnable jar."""
    cache_dir = Path(cache_dir).expanduser()
    build_dir = cache_dir / f"registry-{REGISTRY_VERSION}"
    jar = _find_jar(build_dir)
    if jar is not None:
        return jar

    mvn = shutil.which("mvn")
    java = shutil.which("java")
    if java is None:
        raise LauncherError(
            f"java not found on PATH: the schema registry needs Java {MIN_JAVA}+ "
            "(install it, e.g. apt-get install openjdk-17-jre-headless)"
        )
    major = _java_major(java)
    if major is not None and major < MIN_JAVA:
        raise LauncherError(
            f"{java} is Java {major}; Apicurio Registry {REGISTRY_VERSION} needs Java {MIN_JAVA}+ "
            "(install openjdk-17 or put a newer java first on PATH)"
        )
    if mvn is None:
        raise LauncherError(
            "mvn not found on PATH: it fetches the schema registry from Maven Central once "
            "(install Maven 3.8+, e.g. apt-get install maven)"
        )

    # Unpack next to the final place, then rename: a half-unpacked tree never looks built.
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = cache_dir / f".registry-{REGISTRY_VERSION}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    cmd = [
        # -U: retry downloads even if an earlier failure was cached in ~/.m2 (only runs on a miss).
        mvn, "-B", "-q", "-U", "--no-transfer-progress",
        "-f", str(POM),
        f"-DbuildDir={staging}",
        f"-Dregistry.version={REGISTRY_VERSION}",
        # Same knob as the Kafka jars (e.g. "-o" or "-s my-settings.xml").
        *(os.environ.get("GPLX_MAVEN_ARGS") or "").split(),
        "package",
    ]
    retry = f"mvn -U -f {POM} -DbuildDir={build_dir} -Dregistry.version={REGISTRY_VERSION} package"
    print(
        f"building schema registry (first run only, ~10 s plus a ~110 MB download of "
        f"Apicurio Registry {REGISTRY_VERSION} from Maven Central)...",
        file=sys.stderr,
        flush=True,
    )
    started = time.monotonic()
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        shutil.rmtree(staging, ignore_errors=True)
        raise LauncherError(
            f"Maven did not finish fetching io.apicurio:apicurio-registry-app:{REGISTRY_VERSION} "
            f"within {BUILD_TIMEOUT_S} s (is Maven Central reachable? try: {retry})"
        ) from None
    if proc.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise LauncherError(
            f"Maven could not fetch io.apicurio:apicurio-registry-app:{REGISTRY_VERSION}:tar.gz:all: "
            f"{_mvn_error(proc.stdout + proc.stderr)} (is Maven Central reachable? try: {retry})"
        )
    staged_jar = _find_jar(staging)
    if staged_jar is None:
        shutil.rmtree(staging, ignore_errors=True)
        raise LauncherError(
            f"the Apicurio Registry {REGISTRY_VERSION} distribution has no runnable jar "
            f"({', '.join(_JAR_PATTERNS)}) (choose another GPLX_REGISTRY_VERSION, e.g. 3.0.9)"
        )
    shutil.rmtree(staging / ".maven", ignore_errors=True)
    try:
        staging.rename(build_dir)
    except OSError:
        # Another process finished first (or a stale incomplete dir is in the way).
        jar = _find_jar(build_dir)
        if jar is not None:
            shutil.rmtree(staging, ignore_errors=True)
            return jar
        shutil.rmtree(build_dir, ignore_errors=True)
        staging.rename(build_dir)
    print(
        f"schema registry ready in {build_dir} ({time.monotonic() - started:.0f} s)",
        file=sys.stderr,
        flush=True,
    )
    jar = _find_jar(build_dir)
    assert jar is not None
    return jar


def registry_command(jar: Path, port: int, data_dir: Path) -> tuple[list[str], dict[str, str]]:
    """Java command line and extra environment running the registry on 127.0.0.1:port.

    Everything the registry writes (H2 database, temp and snapshot files) stays under
    ``data_dir``; logs go to stdout. Resident memory is ~180 MB once ready.
    """
    jar = Path(jar).resolve()
    data_dir = Path(data_dir).resolve()
    tmp_dir = data_dir / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    java = shutil.which("java") or "java"
    cmd = [
        java,
        # Small footprint: a dev registry serves few requests and clients cache schemas.
        "-Xmx128m",
        "-Xss512k",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-XX:+ExitOnOutOfMemoryError",
        f"-Djava.io.tmpdir={tmp_dir}",
        # Listen on loopback only: 3.0.9 does not enforce basic auth (fixed in 3.0.12), so anyone
        # reaching the port could delete the schemas every consumer needs (README, Security notes).
        # 3.0.x has no separate management interface; for 3.1+ builds (health on a management port,
        # default 9000) move it to a free loopback port.
        "-Dquarkus.http.host=127.0.0.1",
        f"-Dquarkus.http.port={port}",
        "-Dquarkus.management.host=127.0.0.1",
        "-Dquarkus.management.port=0",
        # Storage: embedded H2 file database under data_dir, small connection pool.
        f"-Dapicurio.datasource.url=jdbc:h2:file:{data_dir / 'h2' / 'registry'}",
        "-Dapicurio.datasource.jdbc.initial-size=2",
        "-Dapicurio.datasource.jdbc.min-size=2",
        "-Dapicurio.datasource.jdbc.max-size=20",
        f"-Dapicurio.storage.snapshot.location={data_dir}",
        f"-Dapicurio.import.work-dir={tmp_dir}",
        # Logs: stdout, no banner, no per-request access or audit log, a readable timestamp
        # (Apicurio's own format prints the month as "11+00").
        "-Dquarkus.banner.enabled=false",
        "-Dquarkus.http.access-log.enabled=false",
        # One audit line and one metrics line per registered schema otherwise.
        '-Dquarkus.log.category."io.apicurio.registry.logging.audit".level=WARN',
        '-Dquarkus.log.category."io.apicurio.registry.storage.metrics".level=WARN',
        "-Dquarkus.log.console.stderr=false",
        "-Dquarkus.log.console.format=%d{yyyy-MM-dd HH:mm:ss,SSS} %-5p [%c{3.}] (%t) %s%e%n",
        "-jar",
        str(jar),
    ]
    return cmd, {}
