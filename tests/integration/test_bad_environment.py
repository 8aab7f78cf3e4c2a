"""A bad environment gets one line naming the problem and the fix, a non-zero exit, and no traceback."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

GPLX = [sys.executable, "-m", "gplx_bus.cli"]


def _run(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*GPLX, *args], capture_output=True, text=True, env={**os.environ, **env},
                          timeout=timeout, cwd=Path(__file__).parents[2])


def _assert_one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("gplx-bus: error:")]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def _path_without(tmp_path: Path, *tools: str) -> str:
    """A PATH where the named tools do not exist but everything else (python, ss, ...) does."""
    shadow = tmp_path / "bin"
    shadow.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            target = shadow / name
            if name not in tools and not target.exists():
                target.symlink_to(os.path.join(directory, name))
    return str(shadow)


def test_no_java(tmp_path):
    result = _run(["local", "up"], {"PATH": _path_without(tmp_path, "java"),
                                                        "GPLX_HOME": str(tmp_path / "home")})
    _assert_one_line_error(result, "java", "install")


def test_no_maven_with_empty_cache(tmp_path):
    result = _run(["local", "up"], {"PATH": _path_without(tmp_path, "mvn"), "GPLX_HOME": str(tmp_path / "home")})
    _assert_one_line_error(result, "mvn", "install")


@pytest.mark.integration
def test_maven_central_unreachable(tmp_path):
    settings = tmp_path / "settings.xml"
    settings.write_text(
        "<settings><mirrors><mirror><id>nowhere</id><mirrorOf>*</mirrorOf>"
        "<url>http://127.0.0.1:9/maven2</url></mirror></mirrors></settings>"
    )
    result = _run(["local", "up"], {
        "GPLX_HOME": str(tmp_path / "home"),
        "GPLX_MAVEN_ARGS": f"-s {settings} -Dmaven.repo.local={tmp_path / 'repo'}",
    })
    _assert_one_line_error(result, "Maven", "reachable")


@pytest.mark.integration
def test_port_taken(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _run(["local", "up", "--kafka-port", str(port), "--no-registry"],
                      {"GPLX_HOME": str(tmp_path / "home")})
    _assert_one_line_error(result, str(port), "in use")


def _home_with_cached_jars(tmp_path: Path) -> Path:
    """A GPLX_HOME of its own (state, data) that shares the cached jars: nothing is fetched again."""
    from deploy.local.jars import kafka_lib_dir

    home = tmp_path / "home"
    home.mkdir()
    (home / "jars").symlink_to(kafka_lib_dir().parent)
    return home


@pytest.mark.integration
def test_a_broker_that_dies_at_start_is_explained_not_pointed_at_a_deleted_log(tmp_path):
    """Too small a heap: the JVM says why on stdout, with no ERROR line in the log, and the failed start deletes
    the run's folder (log included). The line must carry the reason and the fix, and name no file that is gone."""
    home = _home_with_cached_jars(tmp_path)
    result = _run(["local", "up", "--no-registry", "--kafka-port", str(_free_port())],
                  {"GPLX_HOME": str(home), "GPLX_KAFKA_HEAP": "-Xmx48m"})
    _assert_one_line_error(result, "OutOfMemoryError", "GPLX_KAFKA_HEAP")
    line = result.stderr.strip().splitlines()[-1]
    assert "see " not in line and "broker.log" not in line, line
    assert not (home / "run" / "local" / "data").exists()  # which is why the log cannot be pointed at


def _free_port() -> int:
    from deploy.local.ports import free_port

    return free_port()


def test_bad_cli_argument_is_one_line():
    result = _run(["local", "up", "--nodes", "two"], {})
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "nodes" in result.stderr


def test_help_reads_well():
    result = _run(["--help"], {})
    assert result.returncode == 0
    assert "local" in result.stdout
