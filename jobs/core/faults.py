"""Crash points for the crash tests: ``CURATE_CRASH_AT=<point>`` makes the process ``kill -9`` itself at
that point, the way a lost node or an OOM killer ends a driver (no clean-up, no finally blocks).

Points: ``stage:<name>:started`` (after the ledger's "running" row), ``commit:<table>:before`` (files
moved into the table, not committed), ``commit:<table>:after`` (committed, nothing else done yet).
"""

from __future__ import annotations

import os
import signal

ENVIRONMENT = "CURATE_CRASH_AT"


def crash_point(name: str) -> None:
    if os.environ.get(ENVIRONMENT) == name:
        os.kill(os.getpid(), signal.SIGKILL)
