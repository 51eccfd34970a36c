"""Quality rules beyond English: stop words per language, character segmentation, skipped rules,
per-language thresholds (pure, no Spark)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from jobs.core.config import ConfigError
from tests.conftest import make_config
from udfs.heuristics import STOP_WORDS
from udfs.languages import (
    CHARACTER_SKIPPED_RULES,
    CHARACTERS,
    STOP_WORD_RULE,
    default_rule_set,
    packaged_stop_words,
    rule_set,
    segment_words,
)
from udfs.quality import LanguageRules, QualityRules, quality_features, rule_names

GERMAN = ("Die Stadt liegt an einem großen Fluss und ist seit dem Mittelalter ein wichtiger Ort für den "
          "Handel. Viele Menschen kommen jedes Jahr in die Altstadt, weil sie die alten Häuser und Kirchen "
          "sehen wollen. "
          "Der Bürgermeister hat angekündigt, dass die Brücke im nächsten Sommer erneuert werden soll.\n\n"
          "Im Winter ist es hier oft kalt, aber die Märkte auf dem Platz ziehen trotzdem viele Besucher an. "
          "Seit einigen Jahren gibt es auch ein neues Museum, das die Geschichte der Region erzählt. "
          "Die Schulen der Gemeinde arbeiten eng mit den Vereinen zusammen, um den Kindern mehr zu bieten.")
CHINESE = ("这座城市位于一条大河的岸边，自古以来就是重要的贸易中心。"
           "每年都有很多人来到老城区参观古老的房屋和寺庙。"
           "市长宣布，明年夏天将对这座桥进行翻修，工程预计需要六个月的时间。\n\n"
           "冬天这里常常很冷，但是广场上的集市仍然吸引了许多游客。"
           "近几年还建了一座新的博物馆，介绍了这个地区的历史。"
           "当地的学校和社团密切合作，为孩子们提供更多的课外活动。我们希望这些项目能够改善居民的生活。")


class FixedLanguage:
    """A language-ID model that answers ``lang`` with certainty."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def predict(self, texts: list[str], k: int = 1) -> tuple[list[list[str]], list[list[float]]]:
        return [[f"__label__{self.lang}"] for _ in texts], [[1.0] for _ in texts]


def _reasons(texts: list[str], lang: str, **changes: object) -> list[str | None]:
    rules = QualityRules(language=LanguageRules(keep=()), **changes)  # type: ignore[arg-type]
    batch = pa.RecordBatch.from_pydict({"doc_id": [str(i) for i in range(len(texts))], "text": texts})
    return quality_features(batch, rules, FixedLanguage(lang)).column("drop_reason").to_pylist()


def test_english_keeps_gophers_eight_stop_words():
    assert default_rule_set("en").stop_words == frozenset(STOP_WORDS)


def test_stop_words_come_from_stopwordsiso_without_digits_or_punctuation():
    german = packaged_stop_words("de")
    assert {"und", "der", "die", "nicht"} <= german
    assert not any(char.isdigit() for word in german for char in word)
    assert packaged_stop_words("xx") == frozenset()


def test_character_languages_segment_by_character_and_skip_meaningless_rules():
    chinese = default_rule_set("zh")
    assert chinese.segmentation == CHARACTERS
    assert all(len(word) == 1 for word in chinese.stop_words) and "的" in chinese.stop_words
    assert set(CHARACTER_SKIPPED_RULES) <= chinese.skip_rules
    assert set(CHARACTER_SKIPPED_RULES) | {STOP_WORD_RULE} <= set(rule_names())


def test_a_language_without_a_stop_word_list_skips_that_rule():
    assert STOP_WORD_RULE in default_rule_set("xx").skip_rules
    assert STOP_WORD_RULE in default_rule_set("th").skip_rules  # stopwordsiso's Thai words are all multi-char
    assert STOP_WORD_RULE not in default_rule_set("de").skip_rules


def test_segment_words_spaces_out_cjk_characters_only_where_asked():
    texts = pa.array(["我们 use Python。", "我们 use Python。"])
    segmented = segment_words(texts, pa.array([True, False]).to_numpy(zero_copy_only=False)).to_pylist()
    assert segmented[0].split() == ["我", "们", "use", "Python。"]
    assert segmented[1] == "我们 use Python。"


def test_german_page_passes_with_german_stop_words_and_fails_with_english_ones():
    page = GERMAN
    assert _reasons([page], "de") == [None]
    english_rules = {"de": rule_set("de", stop_words=frozenset(STOP_WORDS))}
    assert _reasons([page], "de", languages=english_rules) == ["gopher_stop_words"]


def test_chinese_page_passes_with_character_segmentation_and_fails_split_on_whitespace():
    page = CHINESE
    assert _reasons([page], "zh") == [None]
    whitespace = {"zh": rule_set("zh", segmentation="whitespace")}
    assert _reasons([page], "zh", languages=whitespace) == ["gopher_min_words"]


def test_low_quality_chinese_pages_are_still_dropped():
    repeated = "\n".join(["欢迎访问我们的网站，点击这里了解更多信息。"] * 20)
    short = "这是一个很短的页面。"
    assert _reasons([repeated, short], "zh") == ["gopher_dup_line_frac", "gopher_min_words"]


def test_thresholds_per_language_apply_only_to_that_language():
    page = CHINESE
    strict = {"zh": rule_set("zh", overrides={"min_doc_words": 1000})}
    assert _reasons([page], "zh", languages=strict) == ["gopher_min_words"]
    assert _reasons([GERMAN], "de", languages=strict) == [None]


def test_skip_rules_configured_for_a_language():
    short = "Kurzer Text ohne viel Inhalt."
    assert _reasons([short], "de") == ["gopher_min_words"]
    lenient = {"de": rule_set("de", skip_rules=frozenset({"gopher_min_words"}))}
    assert _reasons([short], "de", languages=lenient)[0] != "gopher_min_words"


def test_config_refuses_unknown_thresholds_and_rules(tmp_path):
    with pytest.raises(ConfigError, match="unknown threshold"):
        make_config(tmp_path, quality={"languages": {"de": {"thresholds": {"min_doc_wordz": 10}}}})
    with pytest.raises(ConfigError, match="unknown rule"):
        make_config(tmp_path, quality={"languages": {"de": {"skip_rules": ["no_such_rule"]}}})
    config = make_config(tmp_path, quality={"languages": {"zh": {"thresholds": {"min_doc_words": 100}}}})
    assert config.quality.languages["zh"].thresholds == {"min_doc_words": 100}


def test_demo_pages_in_seven_languages_pass_at_english_rates_and_low_quality_ones_do_not():
    from jobs.core import models
    from udfs.demo_corpus import DemoSpec, original_page

    kept_languages = ("en", "de", "fr", "es", "ru", "zh", "ja")
    pages = [original_page(DemoSpec(seed=21, foreign_rate=0.85, low_quality_rate=0.3), index)
             for index in range(1400)]
    batch = pa.RecordBatch.from_pydict({"doc_id": [page.id for page in pages],
                                        "text": [page.text for page in pages]})
    rules = QualityRules(language=LanguageRules(keep=kept_languages))
    reasons = quality_features(batch, rules, models.load("lid.176.ftz")).column("drop_reason").to_pylist()
    passed: dict[tuple[str, bool], list[bool]] = {}
    for page, reason in zip(pages, reasons, strict=True):
        if page.domain != "ads":
            passed.setdefault((page.lang, page.quality == "good"), []).append(reason is None)
    rate = {key: sum(values) / len(values) for key, values in passed.items()}
    english = rate[("en", True)]
    for lang in kept_languages:
        assert len(passed[(lang, True)]) >= 60 and len(passed[(lang, False)]) >= 15, (lang, len(passed))
        assert rate[(lang, True)] >= min(0.9, english - 0.05), (lang, rate[(lang, True)], english)
        assert rate[(lang, False)] <= 0.05, (lang, rate[(lang, False)])
