"""What one stage did: documents and characters in and out, drops by reason, tables written."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class StageResult:
    """What a stage read, kept and dropped (by reason), and how long it took.

    Invariant checked by :meth:`reconciles`: ``docs_in == docs_out + sum(drops.values())``.
    """

    stage: str
    docs_in: int
    docs_out: int
    chars_in: int = 0
    chars_out: int = 0
    drops: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0  # set by the runner
    tables: dict[str, int | None] = field(default_factory=dict)  # table name -> Delta version written
    details: dict[str, Any] = field(default_factory=dict)

    def reconciles(self) -> bool:
        return self.docs_in == self.docs_out + sum(self.drops.values())
