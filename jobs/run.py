"""Entry point of the whole pipeline for schedulers: ``curate run`` as a spark-submit application.

    spark-submit jobs/run.py --config conf/cluster.yaml --run-date 2026-11-21
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:  # spark-submit jobs/run.py from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    from jobs.cli import main as cli_main

    return cli_main(["run", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
