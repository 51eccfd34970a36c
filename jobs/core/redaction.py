"""Secrets never leave the process: storage options and Spark settings that look like credentials are
registered here when a config is loaded, and every text bound for disk or a terminal (config.json,
the ledger, the run log, the report, error lines) passes through :func:`redact`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"
SECRET_WORDS = ("SECRET", "TOKEN", "PASSWORD", "PASSWD", "CREDENTIAL", "ACCESS_KEY", "PRIVATE", "SESSION")
_SECRETS: set[str] = set()


def is_secret(name: str) -> bool:
    """Whether an option's name says it holds a credential (``AWS_SECRET_ACCESS_KEY``, ``fs.s3a.secret.key``,
    ``AWS_SESSION_TOKEN``, ``AWS_ACCESS_KEY_ID``...)."""
    upper = re.sub(r"[^A-Z]", "_", name.upper())
    return any(word in upper for word in SECRET_WORDS)


def secret_values(options: Mapping[str, Any]) -> list[str]:
    return [str(value) for name, value in options.items() if is_secret(name) and str(value)]


def masked(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options with every credential's value replaced by ``***``."""
    return {name: MASK if is_secret(name) and str(value) else value for name, value in options.items()}


def register(values: Iterable[str]) -> None:
    """Remember secret values so that :func:`redact` removes them from any text (4+ characters)."""
    _SECRETS.update(value for value in values if len(value) >= 4)


def redact(text: str) -> str:
    for value in sorted(_SECRETS, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    return text
