"""The run funnel: every stage's result, printed at the end of ``curate run`` and saved as JSON."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import asdict, dataclass, field

from jobs.core import storage
from jobs.core.result import StageResult


def new_run_id() -> str:
    """Sortable and unique: UTC time to the second plus 6 random hex digits."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


@dataclass
class Funnel:
    run_id: str
    config_hash: str
    stages: list[StageResult] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps({"run_id": self.run_id, "config_hash": self.config_hash,
                           "stages": [asdict(stage) for stage in self.stages]}, indent=2, sort_keys=True)

    def render(self) -> str:
        header = (f"{'stage':<12}{'docs in':>12}{'docs out':>12}{'kept %':>8}{'chars in':>15}"
                  f"{'chars out':>15}{'seconds':>9}")
        lines = [f"funnel for run {self.run_id}", header, "-" * len(header)]
        for stage in self.stages:
            kept = 100.0 * stage.docs_out / stage.docs_in if stage.docs_in else 0.0
            lines.append(f"{stage.stage:<12}{stage.docs_in:>12,}{stage.docs_out:>12,}{kept:>7.1f}%"
                         f"{stage.chars_in:>15,}{stage.chars_out:>15,}{stage.seconds:>9.1f}")
            for reason, count in sorted(stage.drops.items(), key=lambda item: (-item[1], item[0])):
                lines.append(f"{'':<4}dropped {reason:<28}{count:>12,}")
            if not stage.reconciles():
                lines.append(f"{'':<4}WARNING: counts do not reconcile for {stage.stage}")
        return "\n".join(lines)

    @classmethod
    def load(cls, run_dir: str, storage_options: dict[str, str] | None = None) -> Funnel | None:
        """The funnel a run saved, if it saved one (a resumed run keeps its finished stages' results)."""
        target = storage.join(run_dir, "funnel.json")
        if not storage.exists(target, storage_options):
            return None
        try:
            data = json.loads(storage.read_bytes(target, storage_options))
            stages = [StageResult(**stage) for stage in data["stages"]]
            return cls(data["run_id"], data["config_hash"], stages)
        except (ValueError, TypeError, KeyError):  # damaged (written by hand, or before writes were atomic)
            return None

    def save(self, run_dir: str, storage_options: dict[str, str] | None = None) -> str:
        target = storage.join(run_dir, "funnel.json")
        storage.write_bytes(target, self.to_json().encode(), storage_options)
        return target
