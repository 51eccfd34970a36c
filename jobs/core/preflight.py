"""Checks that must pass before Spark can start. Standard library only, so the Makefile can run this
file with any Python before the virtualenv exists: ``python3 jobs/preflight.py``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

MIN_JAVA = 17
MIN_PYTHON = (3, 10)


class PreflightError(Exception):
    """One line telling the user what is missing and how to get it."""


def java_executable() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and os.path.isfile(os.path.join(home, "bin", "java")):
        return os.path.join(home, "bin", "java")
    return shutil.which("java")


def java_major_version(java: str) -> int | None:
    output = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', output)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8


def check_java() -> None:
    java = java_executable()
    if java is None:
        raise PreflightError(
            f"Java {MIN_JAVA}+ is required by Spark but no 'java' was found "
            "(install a JDK/JRE 17, e.g. 'apt-get install openjdk-17-jre-headless', or set JAVA_HOME)"
        )
    major = java_major_version(java)
    if major is None or major < MIN_JAVA:
        raise PreflightError(
            f"Java {MIN_JAVA}+ is required by Spark 4 but {java} is Java {major or 'of unknown version'} "
            "(install JDK 17 and point JAVA_HOME at it)"
        )


def check_python() -> None:
    if sys.version_info < MIN_PYTHON:
        raise PreflightError(
            f"Python {'.'.join(map(str, MIN_PYTHON))}+ is required, this is {sys.version.split()[0]} "
            "(run with PYTHON=python3.11 make ...)"
        )


def main() -> int:
    try:
        check_python()
        check_java()
    except PreflightError as exc:
        print(f"curate: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
