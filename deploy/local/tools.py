"""Checks for the external tools the local stack needs, each failing with the fix in one line."""
from __future__ import annotations

import re
import shutil
import subprocess

from deploy.local.errors import LauncherError

_INSTALL_JAVA = "install Java 17 or newer (Debian: apt-get install -y openjdk-17-jre-headless)"
_INSTALL_MAVEN = "install Maven (Debian: apt-get install -y maven)"


def require_java() -> str:
    """Path of a `java` of version 17 or newer."""
    java = shutil.which("java")
    if java is None:
        raise LauncherError(f"`java` not found on PATH; {_INSTALL_JAVA}")
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)', out)
    if match is None or int(match.group(1)) < 17:
        raise LauncherError(f"`java` is too old ({out.splitlines()[0] if out else 'unknown'}); {_INSTALL_JAVA}")
    return java


def require_maven() -> str:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LauncherError(f"`mvn` not found on PATH; {_INSTALL_MAVEN}")
    return mvn
