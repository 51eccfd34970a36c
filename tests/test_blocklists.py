"""URL/domain blocklists and flagged-word fractions, pinned on small hand-checked examples."""

from __future__ import annotations

import pickle
import time

import pyarrow as pa
import pytest

from udfs.blocklists import (
    FlaggedWordRules,
    UrlBlocklist,
    UrlBlocklistRules,
    blocklist_from_categories,
    flagged_word_fractions,
    parse_list,
    url_block_reasons,
)


def _reasons(urls: list[str | None], blocklist: UrlBlocklist) -> list[str | None]:
    return url_block_reasons(pa.array(urls, type=pa.string()), blocklist).to_pylist()


def _domains(*entries: str) -> UrlBlocklist:
    return blocklist_from_categories({"adult": (list(entries), [])})


# --- list files ---------------------------------------------------------------------------------------

def test_parse_list_skips_comments_and_blanks_and_handles_crlf():
    text = ("# UT1 adult domains\r\n"
            "Adult-Site.Example\r\n"
            "\r\n"
            "   \r\n"
            "  spaced.example  \r\n"
            "   # indented comment\r\n"
            "inline.example # trailing comment\n"
            "example.com/page#anchor\r"
            "last.example")
    assert parse_list(text) == ["adult-site.example", "spaced.example", "inline.example",
                                "example.com/page#anchor", "last.example"]
    assert parse_list("") == [] and parse_list("# only\n\n") == []


def test_entries_go_where_they_belong():
    blocklist = blocklist_from_categories({
        "adult": (["WWW.Adult.example", "http://shop.example/bad/page.html", "*.wild.example",
                   "host.example/"],
                  ["bare-host.example", "example.com/path/", "https://www.q.example/page?id=3"]),
    })
    assert blocklist.domains == {"adult.example": "adult", "wild.example": "adult", "host.example": "adult",
                                 "bare-host.example": "adult"}
    assert blocklist.urls == {"shop.example/bad/page.html": "adult", "example.com/path": "adult",
                              "q.example/page?id=3": "adult"}
    assert blocklist.banned_substrings == ()


def test_first_sorted_category_wins_whatever_the_mapping_order():
    blocklist = blocklist_from_categories({
        "gambling": (["shared.example", "gambling-only.example"], ["shared.example/page"]),
        "adult": (["shared.example"], ["shared.example/page"]),
    })
    assert blocklist.domains == {"shared.example": "adult", "gambling-only.example": "gambling"}
    assert blocklist.urls == {"shared.example/page": "adult"}
    assert _reasons(["http://shared.example/", "http://gambling-only.example/"], blocklist) == [
        "url_blocked:adult", "url_blocked:gambling"]


# --- domain rule --------------------------------------------------------------------------------------

def test_domain_matches_itself_and_subdomains_at_label_boundaries():
    blocklist = _domains("adult-site.example")
    urls = ["http://adult-site.example/", "https://www.adult-site.example/x?y=1", "http://a.b.adult-site.example",
            "http://notadult-site.example/", "http://adult-site.example.evil.com/", "http://adult-site.examples/",
            "http://example/", None]
    assert _reasons(urls, blocklist) == ["url_blocked:adult"] * 3 + [None] * 5


def test_host_normalisation_port_userinfo_case_trailing_dot():
    blocklist = _domains("adult-site.example")
    urls = ["HTTP://User:Secret@WWW.Adult-Site.EXAMPLE.:8443/Path", "http://adult-site.example:80",
            "http://adult-site.example@elsewhere.example/"]  # userinfo is not the host
    assert _reasons(urls, blocklist) == ["url_blocked:adult", "url_blocked:adult", None]


def test_subdomain_entry_does_not_block_its_parent():
    blocklist = _domains("ads.news.example")
    urls = ["http://ads.news.example/", "http://x.ads.news.example/", "http://news.example/",
            "http://www.news.example/", "http://sports.news.example/"]
    assert _reasons(urls, blocklist) == ["url_blocked:adult", "url_blocked:adult", None, None, None]


def test_public_suffix_entry_blocks_only_that_exact_host():
    blocklist = _domains("co.uk", "github.io")
    urls = ["http://bbc.co.uk/", "http://www.bbc.co.uk/", "http://someone.github.io/", "http://co.uk/",
            "http://github.io/"]
    assert _reasons(urls, blocklist) == [None, None, None, "url_blocked:adult", "url_blocked:adult"]


def test_entry_under_a_public_suffix_blocks_its_subdomains():
    blocklist = _domains("evil.github.io", "bad.co.uk")
    urls = ["http://evil.github.io/", "http://x.evil.github.io/", "http://good.github.io/",
            "http://www.bad.co.uk/", "http://notbad.co.uk/"]
    assert _reasons(urls, blocklist) == ["url_blocked:adult", "url_blocked:adult", None,
                                         "url_blocked:adult", None]


def test_ip_hosts_match_exactly():
    blocklist = _domains("10.0.0.1", "3.4", "2001:db8::1")
    urls = ["http://10.0.0.1/x", "http://10.0.0.1:8080/", "http://110.0.0.1/", "http://1.2.3.4/",
            "http://[2001:db8::1]:8080/", "http://[2001:db8::2]/"]
    assert _reasons(urls, blocklist) == ["url_blocked:adult", "url_blocked:adult", None, None,
                                         "url_blocked:adult", None]


def test_most_specific_domain_reports_its_category():
    blocklist = blocklist_from_categories({"adult": (["example.org"], []), "ads": (["ads.example.org"], [])})
    assert _reasons(["http://x.ads.example.org/", "http://www.example.org/"], blocklist) == [
        "url_blocked:ads", "url_blocked:adult"]


# --- URL rule -----------------------------------------------------------------------------------------

def test_url_entry_matches_at_path_segment_boundaries():
    blocklist = blocklist_from_categories({"phishing": ([], ["example.com/bad"])})
    urls = ["http://www.example.com/bad/x?y", "https://example.com/bad", "http://example.com/bad/",
            "http://EXAMPLE.com/BAD?x=1#frag", "http://example.com:8080/bad/deeper/page.html",
            "http://example.com/badge", "http://example.com/", "http://example.com/good/bad",
            "http://sub.example.com/bad", "http://example.org/bad"]
    assert _reasons(urls, blocklist) == ["url_blocked:phishing"] * 5 + [None] * 5


def test_url_entry_with_a_file_name_and_deeper_paths():
    blocklist = blocklist_from_categories({"phishing": ([], ["example.com/path/page.html"])})
    urls = ["http://example.com/path/page.html", "http://example.com/path/page.html/extra",
            "http://example.com/path/page.htm", "http://example.com/path/"]
    assert _reasons(urls, blocklist) == ["url_blocked:phishing", "url_blocked:phishing", None, None]


def test_query_only_matters_when_the_entry_has_one():
    blocklist = blocklist_from_categories({"phishing": ([], ["q.example/page?id=3"])})
    urls = ["http://q.example/page?id=3", "http://q.example/page?ID=3&b=1", "http://q.example/page/?id=3",
            "http://q.example/page?id=33", "http://q.example/page?b=1&id=3", "http://q.example/page",
            "http://q.example/page/more?id=3"]
    assert _reasons(urls, blocklist) == ["url_blocked:phishing"] * 3 + [None] * 4


def test_longest_url_entry_reports_its_category():
    blocklist = blocklist_from_categories({"a_broad": ([], ["example.com/a"]),
                                           "b_narrow": ([], ["example.com/a/b"])})
    assert _reasons(["http://example.com/a/b/c", "http://example.com/a/x"], blocklist) == [
        "url_blocked:b_narrow", "url_blocked:a_broad"]


# --- banned substrings and precedence -----------------------------------------------------------------

def test_banned_substrings_ignore_case_and_are_literal():
    blocklist = blocklist_from_categories({}, banned_substrings=["Porn", "a.b", "(x", "", "  "])
    assert blocklist.banned_substrings == ("porn", "a.b", "(x")
    urls = ["http://example.com/PORNstar", "http://a.b.example/", "http://example.com/?q=(x",
            "http://axb.example/", "http://example.com/clean", None]
    assert _reasons(urls, blocklist) == ["url_blocked:banned_substring"] * 3 + [None] * 3


def test_domain_rule_wins_over_url_rule_wins_over_substring_rule():
    blocklist = blocklist_from_categories(
        {"b_domain": (["both.example"], []), "a_url": ([], ["both.example/x", "other.example/x"])},
        banned_substrings=UrlBlocklistRules(banned_substrings=("casino",)).banned_substrings)
    urls = ["http://both.example/x/casino", "http://other.example/x/casino", "http://other.example/casino",
            "http://other.example/y"]
    assert _reasons(urls, blocklist) == ["url_blocked:b_domain", "url_blocked:a_url",
                                         "url_blocked:banned_substring", None]


def test_urls_without_scheme_and_host_are_not_matched_by_host_rules():
    blocklist = _domains("adult-site.example")
    assert _reasons(["adult-site.example/x", "", "mailto:someone@adult-site.example"], blocklist) == [
        None, None, None]


def test_empty_blocklist_blocks_nothing():
    assert _reasons(["http://anything.example/", None], blocklist_from_categories({})) == [None, None]


def test_blocklist_pickles_and_gives_the_same_answers():
    blocklist = blocklist_from_categories({"adult": (["adult.example"], ["example.com/bad"])}, ["casino"])
    urls = ["http://www.adult.example/", "http://example.com/bad/1", "http://casino.example/", "http://ok.example/"]
    before = _reasons(urls, blocklist)  # fills the lazily built URL index, which must pickle too
    copy = pickle.loads(pickle.dumps(blocklist))
    assert copy == blocklist
    assert _reasons(urls, copy) == before == ["url_blocked:adult", "url_blocked:adult",
                                              "url_blocked:banned_substring", None]


def test_large_domain_list_is_fast():
    suffixes = ("com", "org", "co.uk", "example", "github.io")
    listed = [f"site{index}.{suffixes[index % 5]}" for index in range(100_000)]
    blocklist = blocklist_from_categories({"adult": (listed, [f"{name}/bad" for name in listed[:1000]])})
    # even j: a listed site (under www. or a subdomain); odd j: a site one past the list
    prefixes = ("www.", "a.b.", "")
    urls = [f"https://{prefixes[j % 3]}site{j // 2 + (j % 2) * 100_000}.{suffixes[(j // 2) % 5]}/p/{j}"
            for j in range(20_000)]
    started = time.perf_counter()
    reasons = url_block_reasons(pa.array(urls), blocklist)
    elapsed = time.perf_counter() - started
    assert reasons.null_count == 10_000
    assert reasons.to_pylist()[:2] == ["url_blocked:adult", None]
    assert elapsed < 2.0, f"20k URLs against 100k domains took {elapsed:.2f} s"


# --- flagged words ------------------------------------------------------------------------------------

WORD_LISTS = {
    "en": frozenset({"damn", "hell", "blow job"}),
    "de": frozenset({"scheiße", "Arschloch"}),
    "zh": frozenset({"色情", "赌博"}),
    "default": frozenset({"spam"}),
}


def _flagged(texts: list[str | None], langs: list[str | None] | None,
             rules: FlaggedWordRules | None = None) -> list[dict]:
    lang_array = None if langs is None else pa.array(langs, type=pa.string())
    return flagged_word_fractions(pa.array(texts, type=pa.string()), lang_array, WORD_LISTS,
                                  rules or FlaggedWordRules()).to_pylist()


def _row(matches: int, fraction: float, flagged: bool) -> dict:
    return {"flagged_words": matches, "flagged_word_fraction": pytest.approx(fraction),
            "flagged_reason": "flagged_words" if flagged else None}


def test_english_ignores_case_and_edge_punctuation():
    # words: Damn! | This | is | hell, | "DAMN..." | damnation | hell's | -- (punctuation only, not a word)
    rows = _flagged(['Damn! This is hell, "DAMN..." damnation hell\'s --'], ["en"])
    assert rows == [_row(3, 3 / 7, True)]


def test_multi_word_entries_never_match_single_words():
    rows = _flagged(["a blow job here", "blow job"], ["en", "en"])
    assert rows == [_row(0, 0.0, False), _row(0, 0.0, False)]


def test_german_lower_cases_unicode():
    rows = _flagged(["So ein ARSCHLOCH! Scheiße, SCHEIßE. Scheißegal ist das"], ["de"])
    assert rows == [_row(3, 3 / 8, True)]


def test_chinese_counts_substrings_per_non_space_character():
    rows = _flagged(["这是色情网站", "色情 赌博", "这是好网站", "色情色情"], ["zh"] * 4)
    assert rows == [_row(1, 1 / 6, True), _row(2, 2 / 4, True), _row(0, 0.0, False), _row(2, 2 / 4, True)]


def test_nested_character_entries_are_counted_once():
    lists = {"ja": frozenset({"色情", "色"})}
    table = flagged_word_fractions(pa.array(["色情色です"]), pa.array(["ja"]), lists, FlaggedWordRules())
    assert table.column("flagged_words").to_pylist() == [2]  # 色情 once, then the trailing 色
    assert table.column("flagged_word_fraction").to_pylist() == [pytest.approx(2 / 5)]


def test_character_languages_are_a_setting():
    as_words = FlaggedWordRules(character_languages=())
    assert _flagged(["这是色情网站"], ["zh"], as_words) == [_row(0, 0.0, False)]  # one word, not on the list


def test_language_without_a_list_gets_zero_even_with_a_default_list():
    assert _flagged(["merde spam damn"], ["fr"]) == [_row(0, 0.0, False)]


def test_null_or_absent_language_uses_the_default_list():
    rows = _flagged(["spam spam eggs", "damn spam"], [None, None])
    assert rows == [_row(2, 2 / 3, True), _row(1, 1 / 2, True)]
    assert _flagged(["spam eggs eggs eggs"], None) == [_row(1, 1 / 4, True)]
    without_default = flagged_word_fractions(pa.array(["spam spam"]), None, {"en": frozenset({"spam"})},
                                             FlaggedWordRules())
    assert without_default.to_pylist() == [_row(0, 0.0, False)]


def test_mixed_languages_in_one_batch_each_use_their_own_list():
    rows = _flagged(["damn scheiße", "damn scheiße", "spam damn", None, ""], ["en", "de", "en", "en", "de"])
    assert rows == [_row(1, 1 / 2, True), _row(1, 1 / 2, True), _row(1, 1 / 2, True), _row(0, 0.0, False),
                    _row(0, 0.0, False)]


def test_fraction_equal_to_the_threshold_is_kept():
    filler = ["word"] * 99
    at_threshold = " ".join(["damn", *filler])  # 1 of 100 words = 0.01
    above = " ".join(["damn", *filler[:98]])  # 1 of 99 words
    rows = _flagged([at_threshold, above], ["en", "en"])
    assert rows == [_row(1, 0.01, False), _row(1, 1 / 99, True)]
    quarter = FlaggedWordRules(max_fraction=0.25)
    assert _flagged(["damn a b c", "damn hell b c"], ["en", "en"], quarter) == [_row(1, 0.25, False),
                                                                               _row(2, 0.5, True)]


def test_output_types_and_length_check():
    table = flagged_word_fractions(pa.array(["damn"]), pa.array(["en"]), WORD_LISTS, FlaggedWordRules())
    assert table.schema == pa.schema([("flagged_words", pa.int32()), ("flagged_word_fraction", pa.float64()),
                                      ("flagged_reason", pa.string())])
    with pytest.raises(ValueError, match="2 languages for 1 texts"):
        flagged_word_fractions(pa.array(["damn"]), pa.array(["en", "en"]), WORD_LISTS, FlaggedWordRules())
