"""Quality stage on Spark: every signal lands in the scores table, the first failing rule is the reason."""

from __future__ import annotations

import pytest

from jobs import quality
from jobs.core.config import ConfigError
from jobs.core.stage import StageContext
from jobs.core.tables import open_store
from jobs.runner import stage_context
from tests.conftest import make_config
from tests.test_dedup import BRONZE_SCHEMA, _row

GOOD = ("The history of the river valley is long and rich with stories. People have lived there for "
        "thousands of years, and the farms that line its banks are among the oldest in the region. "
        "Scholars who study the area have found tools, pottery and the remains of houses that show how "
        "families worked the land with care. Today the valley is known for its orchards and its markets, "
        "which draw visitors from the cities to the north. A small museum tells the story of the valley.")
GERMAN = ("Die Geschichte des Flusstals ist lang und reich an Erzählungen. Menschen leben dort seit "
          "Tausenden von Jahren, und die Höfe entlang der Ufer gehören zu den ältesten der Region.")


def _config(tmp_path, **quality_settings):
    return make_config(tmp_path, quality=quality_settings)


def _store_docs(spark, config, rows):
    store = open_store(spark, config.output.root, config.tables)
    store.write(spark.createDataFrame(rows, BRONZE_SCHEMA), "deduped", mode="overwrite", run_id="d")
    return store


def test_scores_and_filtered_tables(spark, tmp_path):
    config = _config(tmp_path)
    rows = [_row("good", GOOD), _row("german", GERMAN), _row("short", "Too short to keep."),
            _row("repeated", "\n".join([GOOD] * 4)),
            _row("nav", "\n".join(["Home | About | Contact", "Menu", "Log in", "Share"] * 5 + [GOOD]))]
    store = _store_docs(spark, config, rows)
    result = quality.run(stage_context(config, "q1", spark))

    reasons = {row.doc_id: row.drop_reason for row in store.read("quality_scores").collect()}
    assert reasons["good"] is None
    assert reasons["german"] == "lang_not_kept"
    assert reasons["short"] == "gopher_min_words"
    assert reasons["repeated"] == "gopher_dup_line_frac"  # single newlines: one paragraph, four equal lines
    assert reasons["nav"] is not None and reasons["nav"].startswith(("gopher_", "fineweb_"))
    scores = store.read("quality_scores")
    expected_signals = {"lang", "lang_score", "stop_words", "dup_line_frac", "line_punct_ratio", "run_id"}
    assert expected_signals <= set(scores.columns)
    filtered = store.read("filtered").collect()
    assert [row.doc_id for row in filtered] == ["good"] and filtered[0].lang == "en"
    assert result.docs_in == 5 and result.docs_out == 1 and result.reconciles()
    assert result.details["languages"]["de"] == 1


def test_c4_line_removal_rewrites_kept_text(spark, tmp_path):
    config = _config(tmp_path, c4={"mode": "remove_lines"}, fineweb={"enabled": False})
    text = "Accept cookies\n" + GOOD + "\nPlease enable JavaScript to continue."
    store = _store_docs(spark, config, [_row("page", text)])
    quality.run(stage_context(config, "q1", spark))
    kept = store.read("filtered").first()
    assert kept.text == GOOD and kept.n_chars == len(GOOD)
    row = store.read("quality_scores").first()
    assert (row.c4_lines, row.c4_lines_kept) == (3, 1)


def test_missing_model_fails_before_spark(tmp_path):
    config = _config(tmp_path, language={"model": str(tmp_path / "missing.ftz")})
    with pytest.raises(ConfigError, match=r"quality\.language\.model.*model file not found"):
        quality.check(StageContext(config, "check"))
