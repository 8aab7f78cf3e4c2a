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


def test_bad_cli_argument_is_one_line():
    result = _run(["local", "up", "--nodes", "two"], {})
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "nodes" in result.stderr


def test_help_reads_well():
    result = _run(["--help"], {})
    assert result.returncode == 0
    assert "local" in result.stdout
