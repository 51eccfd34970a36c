"""The documentation stays true to the code: every config key is documented, and the table of defaults
in docs/configuration.md is exactly what the udfs dataclasses define."""

from __future__ import annotations

import re
import typing

from pydantic import BaseModel

from jobs.core.config import Config, defaults_table
from tests.conftest import REPO_ROOT

CONFIGURATION = REPO_ROOT / "docs" / "configuration.md"
START, END = "<!-- defaults-table:start -->", "<!-- defaults-table:end -->"


def _model_of(annotation: object) -> type[BaseModel] | None:
    """The settings model inside an annotation (``X``, ``X | None``, ``list[X]``), else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = _model_of(argument)
        if found is not None:
            return found
    return None


def config_keys(model: type[BaseModel] = Config, prefix: str = "") -> list[str]:
    """Every leaf key a config file can set (``[]`` marks the items of a list of sections, ``<key>`` the
    keys of a map of sections)."""
    keys = []
    for name, info in model.model_fields.items():
        nested = _model_of(info.annotation)
        key = f"{prefix}{name}"
        if nested is None:
            keys.append(key)
        else:
            container = typing.get_origin(info.annotation)
            keys += config_keys(nested, key + {list: "[].", dict: ".<key>."}.get(container, "."))
    return keys


def test_the_key_walker_sees_nested_and_listed_sections():
    keys = config_keys()
    assert "quality.gopher_quality.min_doc_words" in keys and "mix.phases[].weights.mode" in keys
    assert "spark.conf" in keys and "train.quality.positives.where" in keys
    assert "quality.languages.<key>.thresholds" in keys


def test_every_config_key_is_documented():
    text = CONFIGURATION.read_text(encoding="utf-8")
    missing = [key for key in config_keys() if f"`{key}`" not in text]
    assert missing == []


def test_defaults_table_matches_the_code():
    text = CONFIGURATION.read_text(encoding="utf-8")
    embedded = re.search(re.escape(START) + r"\n(.*?)\n" + re.escape(END), text, re.DOTALL)
    assert embedded, f"docs/configuration.md lacks the {START} ... {END} block"
    assert embedded.group(1).strip() == defaults_table().strip(), \
        "docs/configuration.md is out of date: regenerate with python -m jobs.core.config"
