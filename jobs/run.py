"""Entry point for schedulers and clusters: ``curate run`` (or one stage) as a spark-submit application.

    spark-submit jobs/run.py --config conf/cluster.yaml --run-date 2026-11-21
    spark-submit jobs/run.py --stage dedup --config conf/cluster.yaml [--set key=value ...]
    spark-submit jobs/run.py --stage train_topic --config conf/cluster.yaml
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:  # spark-submit jobs/run.py from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    from jobs.cli import STAGE_COMMANDS
    from jobs.cli import main as cli_main

    args = list(sys.argv[1:] if argv is None else argv)
    if "--stage" not in args:
        return cli_main(["run", *args])
    position = args.index("--stage")
    name = args[position + 1] if position + 1 < len(args) else ""
    del args[position : position + 2]
    commands = {stage: command for command, stage in STAGE_COMMANDS.items()}
    command = commands.get(name) or (name if name in STAGE_COMMANDS else None)
    if command is None:
        print(f"jobs/run.py: --stage must be one of {', '.join(commands)}, got {name!r}", file=sys.stderr)
        return 2
    return cli_main([command, *args])


if __name__ == "__main__":
    sys.exit(main())
