"""The failures a run reports in one line, each with its exit code (the CLI maps them; README lists them).

    2  ConfigError (jobs.core.config): the config, an input or a model is wrong; nothing started
    3  SetupError: the environment is wrong (Java, Spark settings, an output root that cannot be written)
    4  ConcurrentRunError / ConcurrentWriteError: another run holds the output root or committed first
    1  StageFailed: a stage failed or refused (PolicyError); the full traceback is in the run's log
"""

from __future__ import annotations


class SetupError(Exception):
    """The machine or cluster cannot run the pipeline as configured (exit 3)."""


class PolicyError(Exception):
    """A stage refuses to produce a misleading result: it read inputs and kept nothing, a mix target is
    infeasible, a classifier is below its floor. The message names the config key that allows it."""


class StageFailed(Exception):
    """A stage of the run failed (exit 1); the message is one line and names the run's log."""

    def __init__(self, stage: str, reason: str, log: str) -> None:
        self.stage, self.reason, self.log = stage, reason, log
        super().__init__(f"stage {stage} failed: {reason} (full log: {log})")
