"""Config loading: validation, overrides and one-line errors naming the key and file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from jobs.core.config import ConfigError, apply_overrides, load_config, parse_override
from tests.conftest import REPO_ROOT

VALID = {"input": {"paths": ["data/*.jsonl"]}, "output": {"root": "out"}}


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


@pytest.mark.parametrize("name", ["local.yaml", "cluster.example.yaml"])
def test_shipped_configs_are_valid(name):
    config = load_config(REPO_ROOT / "conf" / name)
    assert config.input.paths and config.output.root


def test_defaults_and_single_path_string(tmp_path):
    config = load_config(_write(tmp_path, {"input": {"paths": "one/*.jsonl"}, "output": {"root": "o"}}))
    assert config.input.paths == ["one/*.jsonl"]
    assert config.tables.backend == "auto" and config.ingest.max_text_bytes == 1_000_000
    assert config.run.stages == ["ingest", "dedup", "quality", "mix"]


def test_overrides_keep_yaml_types(tmp_path):
    config = load_config(_write(tmp_path, VALID), [
        "ingest.max_text_bytes=1234",
        "input.paths=[a.jsonl, b.jsonl]",
        "spark.conf.spark.sql.shuffle.partitions=3",
        "tables.backend=embedded",
        "input.fields.url=null",
    ])
    assert config.ingest.max_text_bytes == 1234
    assert config.input.paths == ["a.jsonl", "b.jsonl"]
    assert config.spark.conf == {"spark.sql.shuffle.partitions": 3}
    assert config.tables.backend == "embedded" and config.input.fields.url is None


def test_config_hash_changes_with_settings(tmp_path):
    path = _write(tmp_path, VALID)
    assert load_config(path).config_hash() == load_config(path).config_hash()
    assert load_config(path).config_hash() != load_config(path, ["ingest.batch_rows=7"]).config_hash()


@pytest.mark.parametrize(
    ("data", "overrides", "fragment"),
    [
        ({**VALID, "inptu": {}}, [], "'inptu': unknown key"),
        ({**VALID, "ingest": {"max_text_byte": 3}}, [], "'ingest.max_text_byte': unknown key"),
        ({**VALID, "ingest": {"max_text_bytes": "lots"}}, [], "'ingest.max_text_bytes'"),
        ({**VALID, "ingest": {"max_text_bytes": -1}}, [], "greater than 0"),
        ({**VALID, "tables": {"backend": "hive"}}, [], "'tables.backend'"),
        ({"output": {"root": "o"}}, [], "'input': required key is missing"),
        ({"input": {"paths": []}, "output": {"root": "o"}}, [], "'input.paths'"),
        (VALID, ["ingest.nope=1"], "'ingest.nope': unknown key"),
        (VALID, ["ingest.mode=upsert"], "'ingest.mode'"),
        (VALID, ["train.quality.positives.table=t", "train.quality.positives.paths=[a.jsonl]"],
         "give either 'table' or 'paths'"),
        (VALID, ["train.quality.fasttext.bucket=1000"], "'train.quality.fasttext.bucket'"),
        (VALID, ["quality.classifier.group_by=topic"], "needs topic_classifier.enabled"),
        (VALID, ["quality.classifier.keep_top_percent=0"], "'quality.classifier.keep_top_percent'"),
    ],
)
def test_errors_name_the_key_and_the_file(tmp_path, data, overrides, fragment):
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as error:
        load_config(path, overrides)
    message = str(error.value)
    assert fragment in message and str(path) in message and "\n" not in message


def test_file_level_errors(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(_write(tmp_path, "input: [unclosed"))
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(_write(tmp_path, "- a\n- b\n"))


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match=r"key\.path=value"):
        parse_override("no-equals-sign")
    with pytest.raises(ConfigError, match="is a value, not a section"):
        apply_overrides({"ingest": {"mode": "append"}}, ["ingest.mode.deeper=1"])


def test_override_indexes_lists_of_sections():
    data = {"mix": {"phases": [{"name": "main", "fraction": 0.9}, {"name": "anneal", "fraction": 0.1}]}}
    apply_overrides(data, ["mix.phases.1.fraction=0.2", "mix.phases.0.weights.mode=unimax"])
    assert data["mix"]["phases"] == [{"name": "main", "fraction": 0.9, "weights": {"mode": "unimax"}},
                                     {"name": "anneal", "fraction": 0.2}]
    with pytest.raises(ConfigError, match="no item 2 in a list of 2"):
        apply_overrides(data, ["mix.phases.2.fraction=0.1"])
    with pytest.raises(ConfigError, match="no item x"):
        apply_overrides(data, ["mix.phases.x=1"])
