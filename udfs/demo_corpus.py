"""Deterministic synthetic web corpus with ground truth, for demos, tests and benchmarks.

Every document is a pure function of ``(seed, index)``, so shards are generated independently (in
parallel, in constant memory) and a duplicate of document ``j`` is made by regenerating ``j``.

What it plants, all recorded under ``<out>/truth`` (``truth/docs`` has one row per document):
* six domains with their own vocabularies, styles and hosts (encyclopedia, news, forum, code_docs,
  recipes, ads); ``ads`` pages are spam;
* low-quality pages: boilerplate, keyword stuffing, repeated lines, very short pages (English and
  every other language);
* exact duplicates and near-duplicates made by word substitutions until the word-5-gram Jaccard
  similarity to the original is close to a target (the measured value is recorded); duplicates copy
  their root's truth, and a near-duplicate never edits the planted values listed below;
* well-formed pages in de, fr, es, ru, zh and ja, written from a small grammar per language (content
  words, the language's function words and punctuation; zh and ja without spaces);
* on good English pages, at most one of (each at its own rate of those pages):
  - PII: one or two sentences carrying an email, phone number, public IPv4/IPv6 address, Luhn-valid
    card number or valid US SSN (``pii_types``/``pii_values``), and decoys a PII filter must leave
    alone: version strings, dates, ISBNs, private IPs, prices, order numbers failing Luhn (``pii_decoys``);
  - benchmark leaks: an item of ``<out>/benchmarks/demo_qa.jsonl`` printed verbatim as a quiz
    (``benchmark_item``), and decoys sharing at most 8 consecutive words with any item (``leak_decoy``);
  - blocked hosts: a domain, subdomain or URL prefix of the UT1-style ``<out>/blocklist``
    (``blocked_category``), and lookalike hosts and paths it must not block (``lookalike``);
  - toxic forum threads: posters insulting each other, otherwise well-formed (``toxic``);
* malformed lines of every quarantine kind (bad JSON, invalid UTF-8, missing/empty/non-string text,
  oversized text);
* a separate labelled reference set (``<out>/reference/reference.jsonl.gz``): well-formed English pages
  of every domain with their domain and quality, drawn from their own random stream. It stands in for
  curated text (positives of the quality classifier, labelled documents of the topic classifier);
* a labelled toxicity set (``<out>/reference/toxicity.jsonl.gz``, its own random stream, never in the
  crawl) whose clean half uses borderline words benignly, and flagged-word lists (``<out>/wordlists``).
"""

from __future__ import annotations

import functools
import gzip
import ipaddress
import json
import os
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

DOMAINS = ("encyclopedia", "news", "forum", "code_docs", "recipes", "ads")
DOMAIN_WEIGHTS = (0.22, 0.22, 0.18, 0.14, 0.14, 0.10)
LOW_QUALITY_KINDS = ("boilerplate", "keyword_stuffing", "repeated_lines", "too_short")
MALFORMED_KINDS = ("invalid_json", "invalid_utf8", "missing_text", "empty_text", "non_string_text",
                   "text_too_large")
SHINGLE_SIZE = 5

FUNCTION_WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at which but "
    "have an they you were her she there one all we their been has when who will more no if out so "
    "can what up about into than them some could these other its then two may only over also after "
    "most"
).split()

VOCABULARY = {
    "encyclopedia": (
        "history century empire kingdom dynasty population region river mountain province treaty "
        "species genus habitat climate temperature molecule element compound theory physicist chemist "
        "philosopher mathematician astronomy galaxy planet orbit telescope observatory cathedral "
        "architecture monument archaeological excavation civilization agriculture irrigation trade "
        "merchant colony independence constitution parliament monarchy republic election senate "
        "territory border census language dialect literature poet novelist composer symphony painter "
        "museum university professor research discovery invention engine railway bridge canal harbour "
        "island peninsula volcano earthquake glacier desert forest savanna ecosystem mammal reptile "
        "bird insect fossil geology mineral crystal structure evolution genetics protein cell tissue "
        "organism bacteria virus medicine anatomy surgery philosophy religion mythology ritual "
        "festival"
    ).split(),
    "news": (
        "government minister president official announced statement policy economy inflation market "
        "shares investors bank interest rates budget deficit spending tax reform election campaign "
        "voters poll candidate opposition coalition parliament vote protest police court judge trial "
        "ruling lawsuit investigation report analysts forecast growth quarter earnings company chief "
        "executive spokesperson agreement negotiations talks summit leaders sanctions conflict "
        "ceasefire troops border security crisis emergency officials residents city council mayor "
        "infrastructure transport strike union workers wages unemployment housing prices energy oil "
        "gas supply shortage climate storm flood wildfire damage evacuation hospital health vaccine "
        "outbreak schools students teachers funding technology regulators privacy data breach "
        "cyberattack"
    ).split(),
    "forum": (
        "anyone thanks guys lol honestly tried problem issue help question answer reply thread post "
        "edit update fixed works worked broken weird annoying awesome cool yeah nope maybe probably "
        "definitely recommend suggestion advice experience opinion agree disagree guess wondering "
        "figured setup settings install version upgrade laptop phone battery screen keyboard mouse "
        "game level boss character build team match server lag ping console controller mod patch bike "
        "car engine tyres garden plants dog cat vet kids weekend holiday trip hotel flight budget "
        "cheap expensive worth buying bought returned warranty support customer service admin "
        "moderator forum newbie noob pro tip tricks workaround bug glitch crash reboot reinstall"
    ).split(),
    "code_docs": (
        "function parameter argument returns return value type string integer boolean array list "
        "dictionary object class method instance attribute module package import install configure "
        "configuration option default optional required deprecated version release changelog example "
        "usage syntax error exception raises throws callback handler event listener request response "
        "client server endpoint query database table column index schema migration transaction "
        "connection timeout retry cache buffer stream iterator generator thread process async await "
        "promise future lock mutex queue worker scheduler task job pipeline build compile test "
        "assertion fixture mock coverage lint format documentation reference tutorial guide api "
        "interface implementation inherits override constructor destructor pointer memory allocation"
    ).split(),
    "recipes": (
        "flour sugar butter eggs milk cream salt pepper garlic onion tomato olive oil vinegar lemon "
        "lime ginger cinnamon nutmeg vanilla chocolate cocoa honey yeast dough batter whisk stir fold "
        "knead bake roast grill simmer boil fry saute chop slice dice mince grate preheat oven "
        "skillet saucepan bowl tray dish cups tablespoons teaspoons grams minutes heat medium golden "
        "crispy tender juicy fluffy creamy savory sweet spicy fresh herbs basil parsley thyme "
        "rosemary oregano cumin paprika chicken beef pork salmon shrimp rice pasta noodles potatoes "
        "carrots spinach mushrooms beans lentils cheese parmesan mozzarella yogurt broth stock sauce "
        "gravy dressing marinade salad soup stew casserole pie cake cookies bread muffins pancakes"
    ).split(),
    "ads": (
        "buy now cheap discount sale offer deal free shipping limited time best price guaranteed "
        "order today save exclusive bonus click here subscribe winner prize cash earn money fast "
        "online casino bet loans credit instant approval weight loss pills miracle cure amazing "
        "results risk free trial hurry last chance lowest prices unbeatable premium quality brand "
        "replica watches designer bags shoes sneakers outlet clearance coupon promo code voucher "
        "cheapest wholesale bulk supplier factory direct hot new trending viral secret trick doctors"
    ).split(),
}

HOSTS = {
    "encyclopedia": ["wikiverse.org", "knowledgebase.net", "openencyclo.org", "factpedia.com"],
    "news": ["dailyherald.com", "worldreport.net", "citytimes.co", "globalwire.org", "morningpost.com"],
    "forum": ["techforum.net", "gamerboards.com", "askthecrowd.org", "hobbytalk.net"],
    "code_docs": ["docs.pylib.dev", "devreference.io", "apiguide.dev", "readthecode.org"],
    "recipes": ["tastykitchen.com", "homecook.net", "recipebox.org", "bakewell.co"],
    "ads": ["best-deals-now.biz", "cheap-offers.shop", "win-big.click", "megasale.top"],
}
BOILERPLATE = [
    "Home | About | Contact | Privacy Policy", "Skip to main content", "Accept cookies",
    "Subscribe to our newsletter", "Copyright 2024 All rights reserved", "Share on Facebook",
    "Follow us on Twitter", "Log in | Register", "Terms of use", "Back to top", "Related posts",
    "Previous | Next", "Search this site", "Menu", "Advertisement",
]


PLANT_KINDS = ("pii", "pii_decoy", "leak", "leak_decoy", "blocked", "lookalike", "toxic")


@dataclass(frozen=True)
class DemoSpec:
    """What to generate. Rates of duplicates, low quality, foreign and malformed pages are shares of all
    pages; the plant rates (``pii_rate`` ... ``toxic_rate``) are shares of good English original pages,
    the pages a curation filter would otherwise keep, and a page carries at most one plant."""

    docs: int = 20_000
    seed: int = 7
    shard_docs: int = 5_000
    exact_dup_rate: float = 0.05
    near_dup_rate: float = 0.08
    low_quality_rate: float = 0.15
    foreign_rate: float = 0.08
    malformed_rate: float = 0.005
    near_dup_targets: tuple[float, ...] = (0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.6, 0.5)
    oversized_bytes: int = 300_000  # > ingest.max_text_bytes in conf/local.yaml
    reference_docs: int = 4_000
    workers: int = field(default_factory=lambda: max(1, min(4, os.cpu_count() or 1)))
    pii_rate: float = 0.02
    pii_decoy_rate: float = 0.02
    benchmark_items: int = 300
    leak_rate: float = 0.005
    leak_decoy_rate: float = 0.005
    blocked_rate: float = 0.01
    lookalike_rate: float = 0.01
    toxic_rate: float = 0.01
    toxicity_docs: int = 3_000
    foreign_words: tuple[int, int] = (150, 600)  # length of well-formed pages (languages written with spaces)
    foreign_characters: tuple[int, int] = (300, 1200)  # ... and in characters (zh, ja)
    leak_decoy_max_shared_words: int = 8  # leak decoys share at most this many consecutive words with an item

    def plant_rates(self) -> tuple[tuple[str, float], ...]:
        """(plant kind, rate) in the order the draw partitions [0, 1); leaks need benchmark items."""
        leak_rate = self.leak_rate if self.benchmark_items > 0 else 0.0
        return (("pii", self.pii_rate), ("pii_decoy", self.pii_decoy_rate), ("leak", leak_rate),
                ("leak_decoy", self.leak_decoy_rate), ("blocked", self.blocked_rate),
                ("lookalike", self.lookalike_rate), ("toxic", self.toxic_rate))


def _check_spec(spec: DemoSpec) -> None:
    if spec.docs <= 0 or spec.shard_docs <= 0:
        raise ValueError("docs and shard_docs must be positive")
    rates = dict(spec.plant_rates())
    if any(not 0.0 <= rate <= 1.0 for rate in rates.values()) or sum(rates.values()) > 1.0:
        raise ValueError(f"plant rates must be in [0, 1] and sum to at most 1: {rates}")
    if min(spec.benchmark_items, spec.toxicity_docs, spec.reference_docs) < 0:
        raise ValueError("benchmark_items, toxicity_docs and reference_docs cannot be negative")


def _rng(seed: int, *key: object) -> random.Random:
    return random.Random(xxhash.xxh3_64_intdigest((f"{seed}\x1f" + "\x1f".join(map(str, key))).encode()))


def word_shingles(text: str, size: int = SHINGLE_SIZE) -> set[tuple[str, ...]]:
    """Lower-cased word n-grams (punctuation dropped): the similarity the ground truth reports."""
    words = re.findall(r"\w+", text.lower())
    if len(words) < size:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + size]) for i in range(len(words) - size + 1)}


def jaccard(left: set, right: set) -> float:
    if not left and not right:
        return 1.0
    return len(left & right) / len(left | right)


# ------------------------------------------------------------------------------------------ roles


@dataclass(frozen=True)
class Role:
    kind: str  # original | exact | near
    target: int | None = None  # index of the original (root) for duplicates
    jaccard_target: float | None = None


def role_of(spec: DemoSpec, index: int) -> Role:
    rng = _rng(spec.seed, "role", index)
    draw = rng.random()
    if index < 20 or draw >= spec.exact_dup_rate + spec.near_dup_rate:
        return Role("original")
    target = index - 1 - int(rng.random() * min(index, 5_000))
    while True:  # duplicates always point at the root original of their group
        parent = role_of(spec, target)
        if parent.kind == "original":
            break
        target = parent.target  # type: ignore[assignment]
    if draw < spec.exact_dup_rate:
        return Role("exact", target)
    return Role("near", target, rng.choice(spec.near_dup_targets))


# ---------------------------------------------------------------------------------------- content


@dataclass(frozen=True)
class Plants:
    """The curation targets planted in one page (empty for most pages): the truth columns of those names."""

    pii_types: tuple[str, ...] = ()
    pii_values: tuple[str, ...] = ()  # exactly as printed in the text, one per type
    pii_decoys: tuple[str, ...] = ()  # PII-looking strings a PII filter must not mask
    benchmark_item: str | None = None  # id of the benchmark item printed verbatim in the text
    leak_decoy: bool = False  # shares stock phrases (at most 8 consecutive words) with benchmark items
    blocked_category: str | None = None  # blocklist category whose entry covers the URL
    lookalike: bool = False  # URL resembles a blocklist entry without being covered by it
    toxic: bool = False


@dataclass
class Page:
    id: str
    domain: str
    lang: str
    quality: str
    url: str
    date: str
    text: str
    plants: Plants = field(default_factory=Plants)


def _sentence(rng: random.Random, vocab: list[str], ending: str = ".", content_share: float = 0.55) -> str:
    length = rng.randint(8, 20)
    words = [rng.choice(vocab) if rng.random() < content_share else rng.choice(FUNCTION_WORDS)
             for _ in range(length)]
    words[0] = words[0].capitalize()
    return " ".join(words) + ending


def _paragraphs(rng: random.Random, vocab: list[str], count: int, ending: str = ".") -> list[str]:
    return [" ".join(_sentence(rng, vocab, ending) for _ in range(rng.randint(3, 6))) for _ in range(count)]


def _good_text(rng: random.Random, domain: str) -> str:
    vocab = VOCABULARY[domain]
    if domain == "encyclopedia":
        title = " ".join(w.capitalize() for w in rng.sample(vocab, 2))
        return "\n\n".join([title, *_paragraphs(rng, vocab, rng.randint(3, 7))])
    if domain == "news":
        headline = _sentence(rng, vocab, "")
        dateline = f"{rng.choice(['LONDON', 'NEW YORK', 'TOKYO', 'BERLIN', 'NAIROBI'])} (Wire) -"
        body = _paragraphs(rng, vocab, rng.randint(3, 6))
        body[0] = f"{dateline} {body[0]}"
        return "\n\n".join([headline, *body])
    if domain == "forum":
        posts = []
        for _ in range(rng.randint(3, 7)):
            user = f"user{rng.randint(100, 9999)}"
            ending = rng.choice([".", "?", "!"])
            posts.append(f"Posted by {user}:\n" + " ".join(_sentence(rng, vocab, ending)
                                                         for _ in range(rng.randint(2, 5))))
        return "\n\n".join(posts)
    if domain == "code_docs":
        name = f"{rng.choice(vocab)}_{rng.choice(vocab)}"
        signature = f"def {name}({rng.choice(vocab)}, {rng.choice(vocab)}=None):"
        params = "\n".join(f"- {rng.choice(vocab)}: {_sentence(rng, vocab)}"
                           for _ in range(rng.randint(2, 4)))
        example = f">>> {name}({rng.randint(0, 99)})\n{rng.randint(0, 9999)}"
        return "\n\n".join([f"{name}", signature, *_paragraphs(rng, vocab, rng.randint(2, 4)),
                            "Parameters:\n" + params, "Example:\n" + example])
    if domain == "recipes":
        dish = rng.choice(["pie", "stew", "cake", "salad"])
        title = f"{rng.choice(vocab).capitalize()} and {rng.choice(vocab)} {dish}"
        ingredients = "\n".join(f"- {rng.randint(1, 4)} {rng.choice(['cups', 'tablespoons', 'grams'])} "
                                f"{rng.choice(vocab)}" for _ in range(rng.randint(4, 9)))
        steps = "\n".join(f"{n}. {_sentence(rng, vocab)}" for n in range(1, rng.randint(4, 8)))
        return "\n\n".join([title, *_paragraphs(rng, vocab, rng.randint(1, 2)),
                            "Ingredients:\n" + ingredients, "Directions:\n" + steps])
    # ads: spam by construction
    lines = []
    for _ in range(rng.randint(6, 14)):
        words = [rng.choice(vocab) for _ in range(rng.randint(4, 10))]
        lines.append(" ".join(words).upper() + rng.choice(["!!!", "!!", " $$$", " >>>", "!"]))
    return "\n".join(lines)


def _low_quality_text(rng: random.Random, domain: str, kind: str) -> str:
    vocab = VOCABULARY[domain]
    if kind == "boilerplate":
        nav = [rng.choice(BOILERPLATE) for _ in range(rng.randint(12, 25))]
        nav.insert(rng.randint(0, len(nav)), _sentence(rng, vocab))
        return "\n".join(nav)
    if kind == "keyword_stuffing":
        keywords = rng.sample(vocab, 3)
        return " ".join(rng.choice(keywords) for _ in range(rng.randint(120, 300)))
    if kind == "repeated_lines":
        line = _sentence(rng, vocab)
        others = [_sentence(rng, vocab) for _ in range(2)]
        return "\n".join([line] * rng.randint(15, 40) + others)
    return " ".join(rng.choice(vocab) for _ in range(rng.randint(3, 9)))  # too_short


# ------------------------------------------------------------------------------------ other languages
# Each language is a small grammar: content words with what agreement needs (gender, case forms), the
# language's own function words inside sentence templates, and its punctuation. Pages read as prose to
# language ID and to per-language stop-word rules, yet every one is generated, never copied.

_YEARS = range(1990, 2025)
_Option = TypeVar("_Option")


def _choose(rng: random.Random, options: Sequence[_Option]) -> _Option:
    return options[rng.randrange(len(options))]


def _capitalize(sentence: str) -> str:
    """Upper-case the first letter (after any opening punctuation such as '¿')."""
    for position, char in enumerate(sentence):
        if char.isalpha():
            return sentence[:position] + char.upper() + sentence[position + 1 :]
    return sentence


# German: weak adjective endings after the definite article, by case and gender.
_DE_ARTICLE = {"nom": {"m": "der", "f": "die", "n": "das"}, "acc": {"m": "den", "f": "die", "n": "das"},
               "dat": {"m": "dem", "f": "der", "n": "dem"}}
_DE_ENDING = {"nom": {"m": "e", "f": "e", "n": "e"}, "acc": {"m": "en", "f": "e", "n": "e"},
              "dat": {"m": "en", "f": "en", "n": "en"}}
_DE_AGENTS = (("m", "Bürgermeister"), ("m", "Verein"), ("f", "Regierung"), ("f", "Gemeinde"),
              ("f", "Stadtverwaltung"), ("m", "Forscher"), ("f", "Lehrerin"), ("m", "Künstler"),
              ("n", "Unternehmen"), ("n", "Ministerium"), ("f", "Universität"), ("m", "Stadtrat"),
              ("f", "Bürgerinitiative"), ("n", "Museum"))
_DE_THINGS = (("m", "Plan"), ("m", "Bericht"), ("m", "Vorschlag"), ("m", "Haushalt"), ("m", "Wettbewerb"),
              ("m", "Vertrag"), ("m", "Park"), ("m", "Bahnhof"), ("f", "Ausstellung"), ("f", "Studie"),
              ("f", "Brücke"), ("f", "Schule"), ("f", "Bibliothek"), ("f", "Straße"), ("f", "Entwicklung"),
              ("f", "Umfrage"), ("f", "Reform"), ("n", "Projekt"), ("n", "Gesetz"), ("n", "Konzert"),
              ("n", "Programm"), ("n", "Gebäude"), ("n", "Festival"), ("n", "Angebot"), ("n", "Krankenhaus"),
              ("n", "Theater"))
_DE_PLACES = (("f", "Region"), ("f", "Stadt"), ("n", "Dorf"), ("f", "Innenstadt"), ("m", "Landkreis"),
              ("n", "Viertel"), ("f", "Hauptstadt"), ("n", "Rathaus"), ("m", "Norden"), ("m", "Süden"))
_DE_ADJECTIVES = ("neu", "alt", "groß", "klein", "wichtig", "modern", "historisch", "bekannt", "regional",
                  "öffentlich", "kulturell", "wirtschaftlich", "jung", "erfolgreich", "umstritten", "aktuell",
                  "lokal", "ehrgeizig")
_DE_PREDICATES = ("wichtig", "bekannt", "beliebt", "erfolgreich", "umstritten", "modern", "teuer",
                  "notwendig")
_DE_VERBS = (("plant", "planen"), ("unterstützt", "unterstützen"), ("kritisiert", "kritisieren"),
             ("beschreibt", "beschreiben"), ("untersucht", "untersuchen"), ("verändert", "verändern"),
             ("eröffnet", "eröffnen"), ("diskutiert", "diskutieren"), ("fördert", "fördern"),
             ("zeigt", "zeigen"), ("erklärt", "erklären"), ("prüft", "prüfen"), ("übernimmt", "übernehmen"),
             ("veröffentlicht", "veröffentlichen"), ("organisiert", "organisieren"),
             ("präsentiert", "präsentieren"), ("erweitert", "erweitern"), ("verbessert", "verbessern"),
             ("finanziert", "finanzieren"), ("bewertet", "bewerten"))
_DE_PLURAL_SUBJECTS = ("die Einwohner", "viele Eltern", "die Forscher", "die Mitglieder des Vereins",
                       "einige Experten", "die Besucher", "die Schüler", "die Stadträte")
_DE_ADVERBIALS = ("heute", "seit vielen Jahren", "im vergangenen Jahr", "nach langen Diskussionen",
                  "am Montag", "im Frühjahr", "zum ersten Mal", "trotz der Kritik", "inzwischen",
                  "laut einer neuen Umfrage", "im Jahr {year}", "schon bald")


def _de_np(rng: random.Random, case: str, nouns: Sequence[tuple[str, str]]) -> str:
    gender, noun = nouns[rng.randrange(len(nouns))]
    if rng.random() < 0.5:
        return f"{_DE_ARTICLE[case][gender]} {_choose(rng, _DE_ADJECTIVES)}{_DE_ENDING[case][gender]} {noun}"
    return f"{_DE_ARTICLE[case][gender]} {noun}"


def _de_subject(rng: random.Random) -> tuple[str, int]:
    """A subject and its number (0 singular, 1 plural), so the verb can agree."""
    if rng.random() < 0.3:
        return _choose(rng, _DE_PLURAL_SUBJECTS), 1
    return _de_np(rng, "nom", _DE_AGENTS if rng.random() < 0.7 else _DE_THINGS), 0


def _de_pp(rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        phrase = f"in {_de_np(rng, 'dat', _DE_PLACES)}"
        return phrase.replace("in dem ", "im ", 1)
    if kind == 1:
        return f"für {_de_np(rng, 'acc', _DE_AGENTS)}"
    if kind == 2:
        return f"gemeinsam mit {_de_np(rng, 'dat', _DE_AGENTS)}"
    return f"im Jahr {rng.choice(_YEARS)}"


def _de_sentence(rng: random.Random, kind: int) -> str:
    subject, number = _de_subject(rng)
    verb = _choose(rng, _DE_VERBS)[number]
    obj = _de_np(rng, "acc", _DE_THINGS)
    if kind == 0:
        return f"{subject} {verb} {obj} {_de_pp(rng)}."
    if kind == 1:
        adverbial = _choose(rng, _DE_ADVERBIALS).format(year=rng.choice(_YEARS))
        return f"{adverbial} {verb} {subject} {obj}."
    if kind == 2:
        other, other_number = _de_subject(rng)
        return (f"{subject} {verb} {obj}, weil {other} {_de_np(rng, 'acc', _DE_THINGS)} "
                f"{_choose(rng, _DE_VERBS)[other_number]}.")
    if kind == 3:
        second = _choose(rng, _DE_VERBS)[number]
        return f"{subject} {verb} {obj} und {second} auch {_de_np(rng, 'acc', _DE_THINGS)}."
    if kind == 4:
        return f"Es ist noch nicht klar, ob {subject} {obj} {_de_pp(rng)} {verb}."
    if kind == 5:
        thing = _de_np(rng, "nom", _DE_THINGS)
        return f"{thing} ist {_choose(rng, ('sehr', 'ziemlich', 'nicht mehr', 'besonders'))} " \
               f"{_choose(rng, _DE_PREDICATES)}, denn {subject} {verb} {obj}."
    if kind == 6:
        return f"Warum {verb} {subject} {obj} nicht?"
    return f"Dabei {verb} {subject} {obj} {_de_pp(rng)}."


def _de_title(rng: random.Random) -> str:
    phrase = f"{_de_np(rng, 'nom', _DE_THINGS)} in {_de_np(rng, 'dat', _DE_PLACES)}"
    return phrase.replace(" in dem ", " im ", 1)
# French: articles elide before a vowel or mute h; adjectives follow the noun and agree in gender.
_FR_VOWELS = tuple("aeiouhéèêàâîôûAEIOUHÉ")
_FR_AGENTS = (("m", "gouvernement"), ("m", "maire"), ("m", "conseil municipal"), ("f", "mairie"),
              ("f", "région"), ("f", "association"), ("f", "entreprise"), ("m", "chercheur"),
              ("f", "université"), ("m", "ministère"), ("m", "musée"), ("f", "commission"))
_FR_THINGS = (("m", "projet"), ("m", "rapport"), ("m", "budget"), ("m", "pont"), ("m", "festival"),
              ("m", "programme"), ("m", "plan"), ("m", "marché"), ("m", "jardin"), ("m", "hôpital"),
              ("f", "exposition"), ("f", "étude"), ("f", "école"), ("f", "bibliothèque"), ("f", "réforme"),
              ("f", "route"), ("f", "enquête"), ("f", "loi"), ("f", "salle de concert"),
              ("f", "piste cyclable"))
_FR_PLACES = (("f", "région"), ("f", "ville"), ("m", "village"), ("m", "quartier"), ("m", "centre-ville"),
              ("f", "capitale"), ("m", "département"), ("f", "vallée"))
_FR_ADJECTIVES = (("important", "importante"), ("local", "locale"), ("moderne", "moderne"),
                  ("historique", "historique"), ("culturel", "culturelle"), ("public", "publique"),
                  ("régional", "régionale"), ("économique", "économique"), ("ancien", "ancienne"),
                  ("célèbre", "célèbre"), ("récent", "récente"), ("ambitieux", "ambitieuse"),
                  ("municipal", "municipale"), ("international", "internationale"),
                  ("populaire", "populaire"), ("coûteux", "coûteuse"))
_FR_VERBS = (("présente", "présentent"), ("soutient", "soutiennent"), ("critique", "critiquent"),
             ("décrit", "décrivent"), ("étudie", "étudient"), ("transforme", "transforment"),
             ("ouvre", "ouvrent"), ("finance", "financent"), ("prépare", "préparent"),
             ("organise", "organisent"), ("annonce", "annoncent"), ("améliore", "améliorent"),
             ("examine", "examinent"), ("publie", "publient"), ("défend", "défendent"),
             ("développe", "développent"), ("modifie", "modifient"), ("évalue", "évaluent"))
_FR_PLURAL_SUBJECTS = ("les habitants", "les chercheurs", "de nombreux visiteurs", "les élus",
                       "les parents d'élèves", "les membres de l'association", "plusieurs experts",
                       "les commerçants")
_FR_ADVERBIALS = ("cette année", "depuis plusieurs années", "la semaine dernière",
                  "après de longues discussions", "pour la première fois", "au printemps",
                  "malgré les critiques", "selon le journal local", "en {year}", "aujourd'hui")


def _fr_np(rng: random.Random, nouns: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """A definite noun phrase and its gender."""
    gender, noun = nouns[rng.randrange(len(nouns))]
    article = "l'" if noun.startswith(_FR_VOWELS) else ("le " if gender == "m" else "la ")
    if " " not in noun and rng.random() < 0.5:
        noun = f"{noun} {_choose(rng, _FR_ADJECTIVES)[gender == 'f']}"
    return article + noun, gender


def _fr_subject(rng: random.Random) -> tuple[str, int]:
    if rng.random() < 0.3:
        return _choose(rng, _FR_PLURAL_SUBJECTS), 1
    return _fr_np(rng, _FR_AGENTS)[0], 0


def _fr_pp(rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return f"dans {_fr_np(rng, _FR_PLACES)[0]}"
    if kind == 1:
        return f"pour {_fr_np(rng, _FR_AGENTS)[0]}"
    if kind == 2:
        return f"avec {_fr_np(rng, _FR_AGENTS)[0]}"
    return f"en {rng.choice(_YEARS)}"


def _fr_sentence(rng: random.Random, kind: int) -> str:
    subject, number = _fr_subject(rng)
    verb = _choose(rng, _FR_VERBS)[number]
    obj = _fr_np(rng, _FR_THINGS)[0]
    if kind == 0:
        return f"{subject} {verb} {obj} {_fr_pp(rng)}."
    if kind == 1:
        adverbial = _choose(rng, _FR_ADVERBIALS).format(year=rng.choice(_YEARS))
        return f"{adverbial}, {subject} {verb} {obj}."
    if kind == 2:
        other, other_number = _fr_subject(rng)
        return (f"{subject} {verb} {obj} parce que {other} {_choose(rng, _FR_VERBS)[other_number]} "
                f"{_fr_np(rng, _FR_THINGS)[0]}.")
    if kind == 3:
        negation = "n'" if verb.startswith(_FR_VOWELS) else "ne "
        return f"Selon {_fr_np(rng, _FR_AGENTS)[0]}, {subject} {negation}{verb} pas {obj}."
    if kind == 4:
        second = _choose(rng, _FR_VERBS)[number]
        return f"{subject} {verb} {obj} et {second} aussi {_fr_np(rng, _FR_THINGS)[0]}."
    if kind == 5:
        return f"Il est clair que {subject} {verb} {obj} {_fr_pp(rng)}."
    if kind == 6:
        thing, gender = _fr_np(rng, _FR_THINGS)
        quality = _choose(rng, _FR_ADJECTIVES)[gender == "f"]
        return f"{thing} est {_choose(rng, ('très', 'assez', 'plutôt', 'vraiment'))} {quality}, " \
               f"mais {subject} {verb} {obj}."
    return f"Est-ce que {subject} {verb} vraiment {obj} ?"


def _fr_title(rng: random.Random) -> str:
    return f"{_fr_np(rng, _FR_THINGS)[0]} dans {_fr_np(rng, _FR_PLACES)[0]}"


# Spanish: el/la, contractions avoided by construction, adjectives after the noun agreeing in gender.
_ES_AGENTS = (("m", "gobierno"), ("m", "alcalde"), ("m", "ayuntamiento"), ("f", "comunidad"),
              ("f", "asociación"), ("f", "empresa"), ("m", "investigador"), ("f", "universidad"),
              ("m", "ministerio"), ("m", "museo"), ("f", "comisión"), ("m", "consejo"))
_ES_THINGS = (("m", "proyecto"), ("m", "informe"), ("m", "presupuesto"), ("m", "puente"), ("m", "festival"),
              ("m", "programa"), ("m", "plan"), ("m", "mercado"), ("m", "parque"), ("m", "hospital"),
              ("f", "exposición"), ("f", "encuesta"), ("f", "escuela"), ("f", "biblioteca"), ("f", "reforma"),
              ("f", "carretera"), ("f", "investigación"), ("f", "ley"), ("f", "feria"), ("f", "plaza"))
_ES_PLACES = (("f", "región"), ("f", "ciudad"), ("m", "pueblo"), ("m", "barrio"), ("m", "centro"),
              ("f", "capital"), ("f", "provincia"), ("m", "valle"))
_ES_ADJECTIVES = (("importante", "importante"), ("local", "local"), ("moderno", "moderna"),
                  ("histórico", "histórica"), ("cultural", "cultural"), ("público", "pública"),
                  ("regional", "regional"), ("económico", "económica"), ("antiguo", "antigua"),
                  ("famoso", "famosa"), ("reciente", "reciente"), ("ambicioso", "ambiciosa"),
                  ("municipal", "municipal"), ("internacional", "internacional"), ("popular", "popular"),
                  ("nuevo", "nueva"), ("costoso", "costosa"))
_ES_VERBS = (("presenta", "presentan"), ("apoya", "apoyan"), ("critica", "critican"),
             ("describe", "describen"),
             ("estudia", "estudian"), ("transforma", "transforman"), ("abre", "abren"),
             ("financia", "financian"), ("prepara", "preparan"), ("organiza", "organizan"),
             ("anuncia", "anuncian"), ("mejora", "mejoran"), ("revisa", "revisan"), ("publica", "publican"),
             ("defiende", "defienden"), ("desarrolla", "desarrollan"), ("modifica", "modifican"),
             ("evalúa", "evalúan"))
_ES_PLURAL_SUBJECTS = ("los vecinos", "los investigadores", "muchos visitantes", "los concejales",
                       "los padres de los alumnos", "varios expertos", "los miembros de la asociación",
                       "los comerciantes")
_ES_ADVERBIALS = ("este año", "desde hace varios años", "la semana pasada", "después de largas negociaciones",
                  "por primera vez", "en primavera", "a pesar de las críticas", "según el periódico local",
                  "en {year}", "hoy")


def _es_np(rng: random.Random, nouns: Sequence[tuple[str, str]]) -> tuple[str, str]:
    gender, noun = nouns[rng.randrange(len(nouns))]
    article = "el" if gender == "m" else "la"
    if rng.random() < 0.5:
        return f"{article} {noun} {_choose(rng, _ES_ADJECTIVES)[gender == 'f']}", gender
    return f"{article} {noun}", gender


def _es_subject(rng: random.Random) -> tuple[str, int]:
    if rng.random() < 0.3:
        return _choose(rng, _ES_PLURAL_SUBJECTS), 1
    return _es_np(rng, _ES_AGENTS)[0], 0


def _es_pp(rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return f"en {_es_np(rng, _ES_PLACES)[0]}"
    if kind == 1:
        return f"para {_es_np(rng, _ES_AGENTS)[0]}"
    if kind == 2:
        return f"con {_es_np(rng, _ES_AGENTS)[0]}"
    return f"en {rng.choice(_YEARS)}"


def _es_sentence(rng: random.Random, kind: int) -> str:
    subject, number = _es_subject(rng)
    verb = _choose(rng, _ES_VERBS)[number]
    obj = _es_np(rng, _ES_THINGS)[0]
    if kind == 0:
        return f"{subject} {verb} {obj} {_es_pp(rng)}."
    if kind == 1:
        adverbial = _choose(rng, _ES_ADVERBIALS).format(year=rng.choice(_YEARS))
        return f"{adverbial}, {subject} {verb} {obj}."
    if kind == 2:
        other, other_number = _es_subject(rng)
        return (f"{subject} {verb} {obj} porque {other} {_choose(rng, _ES_VERBS)[other_number]} "
                f"{_es_np(rng, _ES_THINGS)[0]}.")
    if kind == 3:
        return f"Según {_es_np(rng, _ES_AGENTS)[0]}, {subject} no {verb} {obj}."
    if kind == 4:
        second = _choose(rng, _ES_VERBS)[number]
        return f"{subject} {verb} {obj} y también {second} {_es_np(rng, _ES_THINGS)[0]}."
    if kind == 5:
        return f"Es evidente que {subject} {verb} {obj} {_es_pp(rng)}."
    if kind == 6:
        thing, gender = _es_np(rng, _ES_THINGS)
        quality = _choose(rng, _ES_ADJECTIVES)[gender == "f"]
        return f"{thing} es {_choose(rng, ('muy', 'bastante', 'realmente', 'algo'))} {quality}, " \
               f"pero {subject} {verb} {obj}."
    return f"¿Por qué {subject} no {verb} {obj}?"


def _es_title(rng: random.Random) -> str:
    return f"{_es_np(rng, _ES_THINGS)[0]} en {_es_np(rng, _ES_PLACES)[0]}"


# Russian: nouns carry their nominative, accusative and prepositional forms; adjectives agree by ending.
_RU_ADJECTIVE_ENDINGS = {  # stem type -> endings: nom m, nom f, nom n, acc f, prep m/n, prep f
    "ый": ("ый", "ая", "ое", "ую", "ом", "ой"),
    "ий": ("ий", "ая", "ое", "ую", "ом", "ой"),
    "ой": ("ой", "ая", "ое", "ую", "ом", "ой"),
}
_RU_ADJECTIVES = (("нов", "ый"), ("важн", "ый"), ("местн", "ый"), ("главн", "ый"), ("сложн", "ый"),
                  ("известн", "ый"), ("современн", "ый"), ("научн", "ый"), ("культурн", "ый"),
                  ("городск", "ой"), ("историческ", "ий"), ("экономическ", "ий"), ("больш", "ой"),
                  ("крупн", "ый"), ("стар", "ый"))
_RU_AGENTS = (("n", "министерство", True), ("f", "администрация", True), ("f", "компания", True),
              ("m", "университет", True), ("m", "музей", True), ("m", "мэр города", False),
              ("m", "губернатор области", False), ("m", "городской совет", False), ("f", "библиотека", True),
              ("m", "фонд", True))
_RU_THINGS = (("m", "проект", "проект", "проекте"), ("m", "отчёт", "отчёт", "отчёте"),
              ("m", "бюджет", "бюджет", "бюджете"), ("m", "мост", "мост", "мосте"),
              ("m", "фестиваль", "фестиваль", "фестивале"), ("m", "план", "план", "плане"),
              ("m", "закон", "закон", "законе"), ("m", "парк", "парк", "парке"),
              ("f", "школа", "школу", "школе"), ("f", "выставка", "выставку", "выставке"),
              ("f", "программа", "программу", "программе"), ("f", "реформа", "реформу", "реформе"),
              ("f", "дорога", "дорогу", "дороге"), ("f", "больница", "больницу", "больнице"),
              ("n", "исследование", "исследование", "исследовании"),
              ("n", "решение", "решение", "решении"), ("n", "предложение", "предложение", "предложении"),
              ("n", "здание", "здание", "здании"))
_RU_PLACES = (("m", "городе", "в"), ("m", "регионе", "в"), ("m", "районе", "в"), ("m", "центре", "в"),
              ("f", "столице", "в"), ("f", "области", "в"), ("n", "селе", "в"), ("m", "севере", "на"),
              ("m", "юге", "на"), ("f", "площади", "на"))
_RU_VERBS = (("обсуждает", "обсуждают"), ("поддерживает", "поддерживают"), ("изучает", "изучают"),
             ("представляет", "представляют"), ("открывает", "открывают"), ("развивает", "развивают"),
             ("критикует", "критикуют"), ("описывает", "описывают"), ("финансирует", "финансируют"),
             ("готовит", "готовят"), ("строит", "строят"), ("меняет", "меняют"), ("публикует", "публикуют"),
             ("улучшает", "улучшают"), ("проверяет", "проверяют"), ("рассматривает", "рассматривают"))
_RU_PLURAL_SUBJECTS = ("жители города", "учёные", "эксперты", "многие студенты", "местные власти", "депутаты",
                       "родители учеников", "члены комиссии")
_RU_ADVERBIALS = ("в этом году", "в прошлом месяце", "уже несколько лет", "на этой неделе", "впервые",
                  "после долгих обсуждений", "по словам экспертов,", "несмотря на критику,", "сегодня",
                  "в {year} году")
_RU_CASE_SLOT = {("nom", "m"): 0, ("nom", "f"): 1, ("nom", "n"): 2, ("acc", "m"): 0, ("acc", "f"): 3,
                 ("acc", "n"): 2, ("prep", "m"): 4, ("prep", "n"): 4, ("prep", "f"): 5}


def _ru_adjective(rng: random.Random, case: str, gender: str) -> str:
    stem, kind = _RU_ADJECTIVES[rng.randrange(len(_RU_ADJECTIVES))]
    return stem + _RU_ADJECTIVE_ENDINGS[kind][_RU_CASE_SLOT[case, gender]]


def _ru_thing(rng: random.Random, case: str) -> str:
    gender, *forms = _RU_THINGS[rng.randrange(len(_RU_THINGS))]
    noun = forms[("nom", "acc", "prep").index(case)]
    return f"{_ru_adjective(rng, case, gender)} {noun}" if rng.random() < 0.5 else noun


def _ru_subject(rng: random.Random) -> tuple[str, int]:
    if rng.random() < 0.3:
        return _choose(rng, _RU_PLURAL_SUBJECTS), 1
    gender, noun, takes_adjective = _RU_AGENTS[rng.randrange(len(_RU_AGENTS))]
    if takes_adjective and rng.random() < 0.5:
        return f"{_ru_adjective(rng, 'nom', gender)} {noun}", 0
    return noun, 0


def _ru_pp(rng: random.Random) -> str:
    kind = rng.randrange(3)
    if kind == 0:
        gender, noun, preposition = _RU_PLACES[rng.randrange(len(_RU_PLACES))]
        if preposition == "в" and rng.random() < 0.5:  # "на крупном севере" would read oddly
            noun = f"{_ru_adjective(rng, 'prep', gender)} {noun}"
        return f"{preposition} {noun}"
    if kind == 1:
        topic = _ru_thing(rng, "prep")
        return f"{'об' if topic[0] in 'аоуэиАОУЭИ' else 'о'} {topic}"
    return f"в {rng.choice(_YEARS)} году"


def _ru_sentence(rng: random.Random, kind: int) -> str:
    subject, number = _ru_subject(rng)
    verb = _choose(rng, _RU_VERBS)[number]
    obj = _ru_thing(rng, "acc")
    if kind == 0:
        return f"{subject} {verb} {obj} {_ru_pp(rng)}."
    if kind == 1:
        adverbial = _choose(rng, _RU_ADVERBIALS).format(year=rng.choice(_YEARS))
        return f"{adverbial} {subject} {verb} {obj}."
    if kind == 2:
        other, other_number = _ru_subject(rng)
        return f"{subject} {verb} {obj}, потому что {other} {_choose(rng, _RU_VERBS)[other_number]} " \
               f"{_ru_thing(rng, 'acc')}."
    if kind == 3:
        return f"Известно, что {subject} не {verb} {obj} {_ru_pp(rng)}."
    if kind == 4:
        return f"{subject} {verb} {obj} и {_choose(rng, _RU_VERBS)[number]} {_ru_thing(rng, 'acc')}."
    if kind == 5:
        return f"Эксперты считают, что {subject} {verb} {obj}."
    if kind == 6:
        return f"Почему {subject} не {verb} {obj}?"
    other, other_number = _ru_subject(rng)
    second = _choose(rng, _RU_VERBS)[other_number]
    return f"{subject} {verb} {obj}, а {other} {second} {_ru_thing(rng, 'acc')}."


def _ru_title(rng: random.Random) -> str:
    return f"{_ru_thing(rng, 'nom')} {_ru_pp(rng)}"


# Chinese: no spaces, full-width punctuation, particles 的/了/是/在/和/也/都.
_ZH_SUBJECTS = ("政府", "市政府", "这所学校", "研究人员", "当地居民", "专家们", "这家公司", "博物馆",
                "老师们", "学生们", "委员会", "记者们", "志愿者们", "环保组织", "医院", "图书馆",
                "许多家长", "年轻人", "村民们", "科学家")
_ZH_PLACES = ("北京", "上海", "广州", "成都", "杭州", "城市中心", "社区", "农村地区", "大学校园", "图书馆",
              "公园", "火车站附近", "老城区", "新区", "山区", "海边")
_ZH_OBJECTS = ("新计划", "研究报告", "环境问题", "交通问题", "传统文化", "历史资料", "新技术", "教育改革",
               "公共服务", "经济发展", "城市规划", "文化活动", "垃圾分类", "医疗条件", "住房政策", "旅游项目",
               "儿童教育", "空气质量", "地方戏曲", "绿色能源")
_ZH_VERBS = ("讨论", "研究", "发布", "支持", "介绍", "推动", "关注", "改善", "组织", "调查", "完成", "提出",
             "宣传", "评估", "参与", "修改")
_ZH_ATTRIBUTES = ("重要的", "新的", "传统的", "现代的", "复杂的", "有趣的", "详细的", "长期的", "具体的",
                  "全面的")
_ZH_PREDICATES = ("重要", "复杂", "紧迫", "有意思", "困难", "成功", "普遍", "敏感")
_ZH_TIMES = ("去年", "今年", "最近", "上个月", "近年来", "目前", "上周", "这几年", "今年春天", "过去十年")
_ZH_EVENTS = ("讨论会", "展览", "讲座", "会议", "活动", "座谈会", "培训班")
_ZH_ASPECTS = ("历史", "意义", "影响", "原因", "背景", "成本", "好处")
_ZH_TEMPLATES = (
    "{time}，{subject}在{place}{verb}了{attribute}{obj}。",
    "{subject}认为{obj}是一个很{predicate}的问题。",
    "{subject}和{subject2}都很关注{place}的{obj}。",
    "因为{obj}非常{predicate}，所以{subject}决定{verb}{obj2}。",
    "{subject}在{place}举办了一次关于{obj}的{event}。",
    "这是{subject}第一次在{place}{verb}{obj}。",
    "但是，很多人还不了解{obj}的{aspect}。",
    "{subject}是不是应该更多地{verb}{obj}？",
    "{time}，{subject}也{verb}了{obj}，效果非常好！",
    "据{subject}介绍，{place}的{obj}已经取得了很大的进展。",
    "{place}的{obj}越来越受到{subject}的重视。",
    "有人说{obj}并不{predicate}，{subject}却不这么看。",
    "为了{verb}{obj}，{subject}花了不少时间。",
    "{subject}希望明年能在{place}继续{verb}{obj}。",
    "关于{obj}的{aspect}，{subject}还没有给出答案。",
    "{subject}对{place}的{obj}进行了{attribute}调查。",
)

# Japanese: no spaces, full-width punctuation, particles は/が/の/を/に/で and です/ます endings.
_JA_SUBJECTS = ("政府", "市役所", "この学校", "研究者たち", "地元の住民", "専門家", "この会社", "博物館",
                "先生たち", "学生たち", "委員会", "記者", "ボランティア団体", "病院", "図書館", "保護者たち",
                "若い世代", "農家の人々", "町内会", "科学者")
_JA_PLACES = ("東京", "大阪", "京都", "札幌", "福岡", "町の中心", "地域", "大学", "図書館", "公園", "病院",
              "駅前", "商店街", "港町", "山あいの村", "住宅地")
_JA_OBJECTS = ("新しい計画", "調査報告", "環境問題", "交通問題", "伝統文化", "歴史資料", "新しい技術",
               "教育改革", "公共サービス", "地域の経済", "都市計画", "文化イベント", "ごみの分別", "医療制度",
               "住宅政策", "観光事業", "子どもの教育", "空気の質", "地元の祭り", "再生可能エネルギー")
_JA_VERBS = ("発表", "議論", "調査", "支援", "紹介", "検討", "推進", "改善", "計画", "開発", "実施", "提案",
             "評価", "整備", "報告", "説明")
_JA_ENDINGS = ("しました", "しています", "する予定です", "したそうです", "してきました", "し始めました",
               "すると発表しました", "したいと考えています")
_JA_NOUN_ENDINGS = ("を行いました", "を進めています", "を始めました", "を続けています", "に力を入れています")
_JA_TOPICS = ("計画", "技術", "問題", "建物", "制度", "取り組み", "地域", "研究", "事業", "祭り")
_JA_PREDICATES = ("とても重要です", "非常に便利です", "少し難しいです", "とても面白いです", "かなり複雑です",
                  "よく知られています", "まだ新しいです", "意外に古いです")
_JA_TIMES = ("昨年", "今年", "最近", "先月", "近年", "現在", "先週", "この春", "十年前")
_JA_ASPECTS = ("歴史", "意味", "影響", "理由", "背景", "費用", "利点")
_JA_TEMPLATES = (
    "{time}、{subject}は{place}で{obj}について{verb}{ending}。",
    "{subject}が{place}で{obj}を{verb}{ending}。",
    "この{topic}は{predicate}。",
    "{place}では{obj}が大きな話題になっています。",
    "{subject}によると、{obj}はまだ{verb}されていません。",
    "なぜ{subject}は{obj}を{verb}するのでしょうか？",
    "{subject}は{place}で{obj}の{verb}{noun_ending}。",
    "しかし、{obj}には多くの課題があります。",
    "{subject}と{subject2}は一緒に{obj}を{verb}しました！",
    "{subject}は{obj}の{aspect}について詳しく説明しました。",
    "{obj}に関心を持つ人が{place}でも増えています。",
    "{subject}の話では、{obj}の{aspect}はあまり知られていないそうです。",
    "{time}、{subject}は{obj}に取り組み始めました。",
    "{place}の{obj}は、{subject}にとって{predicate}。",
)


def _zh_sentence(rng: random.Random, kind: int) -> str:
    return _ZH_TEMPLATES[kind].format(
        time=_choose(rng, _ZH_TIMES), subject=_choose(rng, _ZH_SUBJECTS), subject2=_choose(rng, _ZH_SUBJECTS),
        place=_choose(rng, _ZH_PLACES), obj=_choose(rng, _ZH_OBJECTS), obj2=_choose(rng, _ZH_OBJECTS),
        verb=_choose(rng, _ZH_VERBS), attribute=_choose(rng, _ZH_ATTRIBUTES),
        predicate=_choose(rng, _ZH_PREDICATES), event=_choose(rng, _ZH_EVENTS),
        aspect=_choose(rng, _ZH_ASPECTS))


def _zh_title(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return f"{_choose(rng, _ZH_PLACES)}的{_choose(rng, _ZH_OBJECTS)}"
    return f"关于{_choose(rng, _ZH_OBJECTS)}的{_choose(rng, ('调查', '报告', '思考', '讨论'))}"


def _ja_sentence(rng: random.Random, kind: int) -> str:
    return _JA_TEMPLATES[kind].format(
        time=_choose(rng, _JA_TIMES), subject=_choose(rng, _JA_SUBJECTS), subject2=_choose(rng, _JA_SUBJECTS),
        place=_choose(rng, _JA_PLACES), obj=_choose(rng, _JA_OBJECTS), verb=_choose(rng, _JA_VERBS),
        ending=_choose(rng, _JA_ENDINGS), noun_ending=_choose(rng, _JA_NOUN_ENDINGS),
        topic=_choose(rng, _JA_TOPICS), predicate=_choose(rng, _JA_PREDICATES),
        aspect=_choose(rng, _JA_ASPECTS))


def _ja_title(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return f"{_choose(rng, _JA_PLACES)}の{_choose(rng, _JA_OBJECTS)}について"
    return f"{_choose(rng, _JA_OBJECTS)}の現状と課題"


@dataclass(frozen=True)
class LanguageKit:
    """What the generator needs to write pages in one language."""

    sentence: Callable[[random.Random, int], str]  # (rng, template number) -> one sentence
    title: Callable[[random.Random], str]
    keywords: tuple[str, ...]  # content words: keyword stuffing, near-duplicate substitutions
    boilerplate: tuple[str, ...]  # navigation lines of boilerplate pages
    host: str
    by_characters: bool = False  # zh, ja: no spaces between words, lengths counted in characters
    templates: int = 8  # sentence templates of ``sentence``

    def any_sentence(self, rng: random.Random) -> str:
        return _capitalize(self.sentence(rng, rng.randrange(self.templates)))


LANGUAGES: dict[str, LanguageKit] = {
    "de": LanguageKit(
        _de_sentence, _de_title, tuple(noun for _, noun in _DE_THINGS + _DE_AGENTS),
        ("Startseite | Über uns | Kontakt | Impressum", "Zum Inhalt springen", "Cookies akzeptieren",
         "Newsletter abonnieren", "Alle Rechte vorbehalten", "Auf Facebook teilen", "Folgen Sie uns",
         "Anmelden | Registrieren", "Datenschutz", "Nach oben", "Ähnliche Beiträge", "Zurück | Weiter",
         "Suche", "Menü", "Anzeige"),
        "nachrichten.de"),
    "fr": LanguageKit(
        _fr_sentence, _fr_title, tuple(noun for _, noun in _FR_THINGS + _FR_AGENTS if " " not in noun),
        ("Accueil | À propos | Contact | Mentions légales", "Aller au contenu", "Accepter les cookies",
         "S'abonner à la newsletter", "Tous droits réservés", "Partager sur Facebook", "Suivez-nous",
         "Connexion | Inscription", "Politique de confidentialité", "Haut de page", "Articles similaires",
         "Précédent | Suivant", "Rechercher", "Menu", "Publicité"),
        "journal.fr"),
    "es": LanguageKit(
        _es_sentence, _es_title, tuple(noun for _, noun in _ES_THINGS + _ES_AGENTS),
        ("Inicio | Quiénes somos | Contacto | Aviso legal", "Saltar al contenido", "Aceptar cookies",
         "Suscríbete al boletín", "Todos los derechos reservados", "Compartir en Facebook", "Síguenos",
         "Iniciar sesión | Registrarse", "Política de privacidad", "Volver arriba", "Artículos relacionados",
         "Anterior | Siguiente", "Buscar", "Menú", "Publicidad"),
        "noticias.es"),
    "ru": LanguageKit(
        _ru_sentence, _ru_title, tuple(thing[1] for thing in _RU_THINGS),
        ("Главная | О нас | Контакты | Реклама", "Перейти к содержанию", "Принять cookies",
         "Подписаться на рассылку", "Все права защищены", "Поделиться ВКонтакте", "Мы в соцсетях",
         "Войти | Регистрация", "Политика конфиденциальности", "Наверх", "Похожие записи", "Назад | Далее",
         "Поиск по сайту", "Меню", "Реклама"),
        "novosti.ru"),
    "zh": LanguageKit(
        _zh_sentence, _zh_title, _ZH_OBJECTS,
        ("首页 | 关于我们 | 联系我们 | 隐私政策", "跳到主要内容", "接受Cookie", "订阅我们的新闻",
         "版权所有 保留所有权利", "分享到微信", "关注我们", "登录 | 注册", "使用条款", "返回顶部", "相关文章",
         "上一篇 | 下一篇", "搜索", "菜单", "广告"),
        "xinwen.cn", by_characters=True, templates=len(_ZH_TEMPLATES)),
    "ja": LanguageKit(
        _ja_sentence, _ja_title, _JA_OBJECTS,
        ("ホーム | 会社概要 | お問い合わせ | プライバシーポリシー", "本文へスキップ", "クッキーを受け入れる",
         "ニュースレターを購読", "無断転載を禁じます", "Facebookでシェア", "フォローする",
         "ログイン | 新規登録",
         "利用規約", "ページの先頭へ", "関連記事", "前へ | 次へ", "サイト内検索", "メニュー", "広告"),
        "nyusu.jp", by_characters=True, templates=len(_JA_TEMPLATES)),
}
FOREIGN_LANGS = tuple(sorted(LANGUAGES))
FOREIGN = {lang: kit.keywords for lang, kit in LANGUAGES.items()}  # content words per language


def _text_size(text: str, by_characters: bool) -> int:
    return len(text) if by_characters else len(text.split())


def _foreign_text(rng: random.Random, lang: str, spec: DemoSpec) -> str:
    """A title and 3-6 paragraphs of 3-6 sentences within the language's length range. Templates are dealt
    like cards (each once before any repeats) and no sentence comes twice, as in varied human writing."""
    kit = LANGUAGES[lang]
    joiner = "" if kit.by_characters else " "
    low, high = spec.foreign_characters if kit.by_characters else spec.foreign_words
    seen: set[str] = set()
    deck: list[int] = []
    paragraphs: list[str] = []
    total, wanted = 0, rng.randint(3, 6)
    while len(paragraphs) < wanted or total < low:
        sentences = []
        for _ in range(rng.randint(3, 6)):
            if not deck:
                deck = list(range(kit.templates))
                rng.shuffle(deck)
            kind = deck.pop()
            sentence = _capitalize(kit.sentence(rng, kind))
            for _ in range(5):  # a repeated sentence would read as boilerplate: draw again (rarely needed)
                if sentence not in seen:
                    break
                sentence = _capitalize(kit.sentence(rng, kind))
            seen.add(sentence)
            sentences.append(sentence)
        paragraph = joiner.join(sentences)
        if len(paragraphs) >= 3 and total + _text_size(paragraph, kit.by_characters) > high:
            break
        paragraphs.append(paragraph)
        total += _text_size(paragraph, kit.by_characters)
    return "\n\n".join([_capitalize(kit.title(rng)), *paragraphs])


def _foreign_low_quality_text(rng: random.Random, lang: str, kind: str) -> str:
    """The English low-quality kinds, written in ``lang``."""
    kit = LANGUAGES[lang]
    if kind == "boilerplate":
        nav = [rng.choice(kit.boilerplate) for _ in range(rng.randint(12, 25))]
        nav.insert(rng.randint(0, len(nav)), kit.any_sentence(rng))
        return "\n".join(nav)
    if kind == "keyword_stuffing":
        keywords = rng.sample(kit.keywords, 3)
        return " ".join(rng.choice(keywords) for _ in range(rng.randint(120, 300)))
    if kind == "repeated_lines":
        line = kit.any_sentence(rng)
        others = [kit.any_sentence(rng) for _ in range(2)]
        return "\n".join([line] * rng.randint(15, 40) + others)
    if kit.by_characters:  # too_short
        return "".join(rng.choice(kit.keywords) for _ in range(rng.randint(1, 3)))
    return " ".join(rng.choice(kit.keywords) for _ in range(rng.randint(3, 9)))


# ------------------------------------------------------------------------------------ planted targets


def _insert_paragraph(rng: random.Random, text: str, paragraph: str) -> str:
    """``paragraph`` between two paragraphs of ``text`` (never before its first, the title or heading)."""
    blocks = text.split("\n\n")
    blocks.insert(rng.randint(1, len(blocks)), paragraph)
    return "\n\n".join(blocks)


# PII and decoys --------------------------------------------------------------------------------

PII_TYPES = ("email", "phone", "ip_address", "credit_card", "us_ssn")
DECOY_KINDS = ("version", "date", "isbn", "private_ip", "price", "order_number")
_FIRST_NAMES = ("alex", "maria", "john", "wei", "fatima", "lucas", "sofia", "omar", "nina", "david", "elena",
                "samir")
_LAST_NAMES = ("smith", "garcia", "chen", "mueller", "kowalski", "okafor", "rossi", "tanaka", "silva",
               "novak")
_MAIL_DOMAINS = ("example.com", "example.org", "mail.example.net", "inbox.example")
_PII_SENTENCES = {
    "email": ("For questions about this page, write to {value} and someone will reply within two days.",
              "You can reach the organiser directly at {value} before the end of the month.",
              "Send your photos to {value} if you want them included in the next update."),
    "phone": ("Call the front desk at {value} if you need help with your booking.",
              "The office can be reached at {value} on weekdays between nine and five.",
              "If the problem comes back, ring me at {value} and we can sort it out together."),
    "ip_address": ("The old server at {value} kept dropping connections until we replaced the network card.",
                   "Requests from {value} were blocked after the spike in traffic last night.",
                   "Our mirror answers at {value} for anyone who cannot reach the main site."),
    "credit_card": ("I paid with the card {value} and the charge appeared twice on my statement.",
                    "Please charge the remaining balance to card number {value} as we agreed on the phone.",
                    "The receipt showed the full card number {value}, which should never happen."),
    "us_ssn": ("The form asked for my social security number, so I wrote {value} in the box.",
               "His SSN {value} was printed on the letter, which worried him a lot.",
               "She read her social security number {value} aloud to the clerk at the counter."),
}
_DECOY_SENTENCES = {
    "version": ("Upgrade to version {value} before installing the patch, or the installer refuses to run.",
                "The changelog for release {value} lists three fixes and one new option."),
    "date": ("The meeting planned for {value} was moved to the following week.",
             "Entries received after {value} will be considered for next year instead."),
    "isbn": ("The second edition (ISBN {value}) adds a chapter on the same subject.",
             "Look for ISBN {value} in the library catalogue if the shop has no copies left."),
    "private_ip": ("The printer sits at {value} on the office network, so it cannot be reached from outside.",
                   "Point your browser at {value} to open the settings page of the router."),
    "price": ("The full bundle costs {value} this week, shipping included.",
              "We paid {value} for the tickets and thought it was worth every cent."),
    "order_number": ("Your order number is {value}, keep it for any question about delivery.",
                     "Quote order {value} when you call about the missing parcel."),
}


def luhn_valid(number: str) -> bool:
    """Whether the digits of ``number`` (separators ignored) pass the Luhn checksum of card numbers."""
    digits = [int(char) for char in number if char.isdigit()]
    total = 0
    for position, digit in enumerate(reversed(digits)):
        doubled = digit * 2 if position % 2 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return bool(digits) and total % 10 == 0


def us_ssn_valid(value: str) -> bool:
    """Whether ``value`` is a US SSN the SSA could issue: area 001-899 except 666, group 01-99, serial
    0001-9999 (written ddd-dd-dddd)."""
    match = re.fullmatch(r"(\d{3})-(\d{2})-(\d{4})", value)
    if match is None:
        return False
    area, group, serial = (int(part) for part in match.groups())
    return 0 < area < 900 and area != 666 and group > 0 and serial > 0


def _digits(rng: random.Random, count: int) -> str:
    return "".join(str(rng.randrange(10)) for _ in range(count))


def _with_check_digit(partial: str) -> str:
    """``partial`` plus the one digit that makes it Luhn-valid."""
    return next(partial + digit for digit in "0123456789" if luhn_valid(partial + digit))


def _grouped(digits: str, sizes: Sequence[int], separator: str) -> str:
    groups, start = [], 0
    for size in sizes:
        groups.append(digits[start : start + size])
        start += size
    return separator.join(groups)


def _card_number(rng: random.Random) -> str:
    """A Luhn-valid Visa, Mastercard or Amex number, printed the way people write them."""
    issuer = rng.randrange(3)
    if issuer == 2:  # Amex: 15 digits, 4-6-5
        return _grouped(_with_check_digit(rng.choice(("34", "37")) + _digits(rng, 12)), (4, 6, 5), " ")
    prefix = "4" if issuer == 0 else str(rng.randint(51, 55))
    number = _with_check_digit(prefix + _digits(rng, 15 - len(prefix)))
    return _grouped(number, (4, 4, 4, 4), rng.choice((" ", "-", "")))


def _ssn(rng: random.Random) -> str:
    area = rng.randint(1, 898)
    area += area >= 666  # skip 666, never issued
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def _phone(rng: random.Random) -> str:
    """US numbers in 555-0100..0199 and UK numbers in 020 7946 0xxx: ranges reserved for fiction."""
    area, line = rng.choice((202, 206, 212, 303, 312, 415, 503, 617)), f"01{rng.randint(0, 99):02d}"
    return rng.choice((f"({area}) 555-{line}", f"{area}-555-{line}", f"+1 {area} 555 {line}",
                       f"+44 20 7946 0{rng.randint(0, 999):03d}"))


def _public_ip(rng: random.Random) -> str:
    """A globally routable unicast address, IPv4 or IPv6 (drawn until one is)."""
    while True:
        if rng.random() < 0.5:
            address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv4Address(
                rng.getrandbits(32))
        else:
            prefix = rng.choice((0x2400, 0x2600, 0x2A00, 0x2C0F))
            address = ipaddress.IPv6Address((prefix << 112) | rng.getrandbits(112))
        if address.is_global and not address.is_multicast:
            return address.compressed


def _pii_value(rng: random.Random, kind: str) -> str:
    if kind == "email":
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        local = rng.choice((f"{first}.{last}", f"{first}_{last}{rng.randint(1, 99)}", f"{first[0]}{last}"))
        return f"{local}@{rng.choice(_MAIL_DOMAINS)}"
    if kind == "phone":
        return _phone(rng)
    if kind == "ip_address":
        return _public_ip(rng)
    if kind == "credit_card":
        return _card_number(rng)
    return _ssn(rng)


def _isbn13(rng: random.Random) -> str:
    """A hyphenated ISBN-13 with a correct ISBN check digit (weights 1, 3)."""
    group, publisher = str(rng.randint(0, 9)), _digits(rng, rng.randint(2, 4))
    title = _digits(rng, 9 - len(group) - len(publisher))
    body = "978" + group + publisher + title
    check = (10 - sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body)) % 10) % 10
    return f"978-{group}-{publisher}-{title}-{check}"


def _decoy_value(rng: random.Random, kind: str) -> str:
    if kind == "version":  # the third part exceeds 255, so it can never be read as an IPv4 address
        build = f"{rng.randint(5, 12)}.{rng.randint(0, 9)}.{rng.randint(1000, 25000)}.{rng.randint(1, 999)}"
        return rng.choice((build, f"v{rng.randint(0, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 30)}"))
    if kind == "date":
        year, month, day = rng.randint(2015, 2025), rng.randint(1, 12), rng.randint(1, 28)
        return rng.choice((f"{year}-{month:02d}-{day:02d}", f"{day:02d}/{month:02d}/{year}"))
    if kind == "isbn":
        return _isbn13(rng)
    if kind == "private_ip":
        return rng.choice((f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                           f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                           f"172.{rng.randint(16, 31)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"))
    if kind == "price":
        return rng.choice((f"${rng.randint(1, 2999):,}.{rng.randint(0, 99):02d}",
                           f"€{rng.randint(5, 500)}.00",
                           f"£{rng.randint(1, 99)}.{rng.choice(('00', '50', '99'))}"))
    digits = _digits(rng, 16)  # order_number: card-shaped, but the last digit is never the Luhn one
    if luhn_valid(digits):
        digits = digits[:-1] + str((int(digits[-1]) + 1) % 10)
    return _grouped(digits, (4, 4, 4, 4), rng.choice((" ", "-")))


def _plant_pii(rng: random.Random, text: str) -> tuple[str, Plants]:
    kinds = rng.sample(PII_TYPES, rng.choice((1, 1, 2)))
    values = [_pii_value(rng, kind) for kind in kinds]
    sentences = [rng.choice(_PII_SENTENCES[kind]).format(value=value)
                 for kind, value in zip(kinds, values, strict=True)]
    return _insert_paragraph(rng, text, " ".join(sentences)), Plants(tuple(kinds), tuple(values))


def _plant_pii_decoys(rng: random.Random, text: str) -> tuple[str, Plants]:
    kinds = rng.sample(DECOY_KINDS, rng.choice((1, 2, 2, 3)))
    values = [_decoy_value(rng, kind) for kind in kinds]
    sentences = [rng.choice(_DECOY_SENTENCES[kind]).format(value=value)
                 for kind, value in zip(kinds, values, strict=True)]
    return _insert_paragraph(rng, text, " ".join(sentences)), Plants(pii_decoys=tuple(values))


# Benchmark items, leaks and leak decoys ---------------------------------------------------------------

BENCHMARK_NAME = "demo_qa"
_QA_NOUNS = ("treaty", "empire", "river", "harbour", "colony", "parliament", "census", "dynasty", "glacier",
             "volcano", "merchant", "railway", "canal", "monastery", "province", "senate", "festival",
             "drought", "harvest", "bridge", "fortress", "border", "council", "market", "island", "library",
             "university", "mine", "factory", "village", "lighthouse", "telescope", "manuscript", "coin",
             "tax", "army", "navy", "guild", "cathedral", "temple", "law", "charter", "voyage", "expedition",
             "plague", "famine", "reform", "election", "strike", "union")
_QA_ADJECTIVES = ("northern", "southern", "coastal", "ancient", "medieval", "royal", "rural", "eastern",
                  "western", "early", "late", "small", "powerful", "remote")
_QA_VERBS = ("expanded", "reduced", "replaced", "protected", "divided", "united", "funded", "described",
             "delayed", "improved", "abandoned", "restored", "challenged", "transformed", "weakened",
             "doubled")
_QA_PREPOSITIONS = ("in", "during", "after", "before", "near", "across", "within", "among", "beyond", "under",
                    "along")
_QA_TEMPLATES = (
    "Which of the following best describes {np} {pps}?",
    "According to the passage, what was the main reason {np} {verb} {np2} {pps}?",
    "What is the most likely consequence of {np} {pps}?",
    "Which statement about {np} {pps} is best supported by the evidence?",
    "Which of the following was a direct result of {np} {pps}?",
    "What best explains why {np} {verb} {np2} {pps}?",
)
_QA_DECOY_OPENINGS = ("which of the following best describes", "what is the most likely consequence of")
_QA_DECOY_SENTENCES = (
    "Readers often ask us {opening} the {noun} {prep} the {noun2}, and the honest answer is that it depends.",
    "A quiz in the local paper asked {opening} the {noun}, which started a long argument at our table.",
    "Every exam seems to begin with {opening} something, so we wrote a short guide about the {noun}.",
)


@dataclass(frozen=True)
class BenchmarkItem:
    """A multiple-choice item of the demo benchmark (``answer`` is the letter of the right choice)."""

    id: str
    question: str
    choices: tuple[str, str, str, str]
    answer: str

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "question": self.question, "choices": list(self.choices),
                "answer": self.answer}


def _qa_noun_phrase(rng: random.Random) -> str:
    adjective = f"{rng.choice(_QA_ADJECTIVES)} " if rng.random() < 0.4 else ""
    if rng.random() < 0.5:
        return f"the {adjective}{rng.choice(_QA_NOUNS)} of the {rng.choice(_QA_NOUNS)}"
    return f"the {adjective}{rng.choice(_QA_NOUNS)}"


def _qa_question(rng: random.Random) -> str:
    """15-29 words: a stock opening, noun phrases, then prepositional phrases up to a drawn length."""
    template = rng.choice(_QA_TEMPLATES)
    parts = {"np": _qa_noun_phrase(rng), "np2": _qa_noun_phrase(rng), "verb": rng.choice(_QA_VERBS)}
    phrases: list[str] = []

    def rendered() -> str:
        return " ".join(template.format(pps=" ".join(phrases), **parts).split()).replace(" ?", "?")

    wanted = rng.randint(15, 23)
    while len(rendered().split()) < wanted:
        phrases.append(f"{rng.choice(_QA_PREPOSITIONS)} {_qa_noun_phrase(rng)}")  # at most 7 words
    return rendered()


def _qa_choice(rng: random.Random) -> str:
    return (f"{_qa_noun_phrase(rng).capitalize()} {rng.choice(_QA_VERBS)} {_qa_noun_phrase(rng)} "
            f"{rng.choice(_QA_PREPOSITIONS)} the {rng.choice(_QA_NOUNS)}.")


@functools.lru_cache(maxsize=16)
def benchmark_items(seed: int, count: int) -> tuple[BenchmarkItem, ...]:
    """The benchmark a corpus may leak: ``count`` items from their own random stream, distinct questions."""
    items: list[BenchmarkItem] = []
    questions: set[str] = set()
    for index in range(count):
        rng = _rng(seed, "benchmark", index)
        question = _qa_question(rng)
        while question in questions:
            question = _qa_question(rng)
        questions.add(question)
        choices: list[str] = []
        while len(choices) < 4:
            choice = _qa_choice(rng)
            if choice not in choices:
                choices.append(choice)
        items.append(BenchmarkItem(f"{BENCHMARK_NAME}-{index:04d}", question, tuple(choices),  # type: ignore[arg-type]
                                   "ABCD"[rng.randrange(4)]))
    return tuple(items)


def format_quiz(item: BenchmarkItem) -> str:
    """How a leaked item is printed in a page: question, lettered choices and answer, one per line."""
    lines = [f"Question: {item.question}"]
    lines += [f"{letter}. {choice}" for letter, choice in zip("ABCD", item.choices, strict=True)]
    return "\n".join([*lines, f"Answer: {item.answer}"])


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


@functools.lru_cache(maxsize=16)
def _benchmark_ngrams(seed: int, count: int, size: int) -> frozenset[tuple[str, ...]]:
    """Every word ``size``-gram of the printed items, to prove a decoy shares fewer consecutive words."""
    grams: set[tuple[str, ...]] = set()
    for item in benchmark_items(seed, count):
        words = _words(format_quiz(item))
        grams.update(tuple(words[i : i + size]) for i in range(len(words) - size + 1))
    return frozenset(grams)


def _plant_leak(spec: DemoSpec, rng: random.Random, text: str) -> tuple[str, Plants]:
    item = benchmark_items(spec.seed, spec.benchmark_items)[rng.randrange(spec.benchmark_items)]
    return _insert_paragraph(rng, text, format_quiz(item)), Plants(benchmark_item=item.id)


def _plant_leak_decoy(spec: DemoSpec, rng: random.Random, text: str, domain: str) -> tuple[str, Plants]:
    """A sentence with a stock quiz opening; redrawn if the page would share 9 consecutive words with an
    item (vanishingly rare), and left unplanted if it still does."""
    size = spec.leak_decoy_max_shared_words + 1
    forbidden = _benchmark_ngrams(spec.seed, spec.benchmark_items, size)
    vocab = VOCABULARY[domain]
    for _ in range(10):
        sentence = rng.choice(_QA_DECOY_SENTENCES).format(
            opening=rng.choice(_QA_DECOY_OPENINGS), noun=rng.choice(vocab), noun2=rng.choice(vocab),
            prep=rng.choice(_QA_PREPOSITIONS))
        planted = _insert_paragraph(rng, text, sentence)
        words = _words(planted)
        if not any(tuple(words[i : i + size]) in forbidden for i in range(len(words) - size + 1)):
            return planted, Plants(leak_decoy=True)
    return text, Plants()


# Blocklist: hosts and URL prefixes ---------------------------------------------------------------

BLOCKLIST: dict[str, dict[str, tuple[str, ...]]] = {
    "adult": {"domains": ("adultsite.example", "hotcams.example", "cams.bigportal.example"),
              "urls": ("freehost.example/adult", "pics.example.org/nsfw")},
    "gambling": {"domains": ("casino-royale.example", "betfast.example", "pokerpalace.example"),
                 "urls": ("sportsnews.example/betting",)},
    "malware": {"domains": ("free-cracks.example", "keygen-zone.example", "drive-by.example"),
                "urls": ("filehost.example/bad", "downloads.example.net/bad")},
}
LISTED_SUBDOMAIN = "cams.bigportal.example"  # listed although its registered domain is not
_HOST_PREFIXES = ("www.", "cdn.", "m.", "img.eu.", "a.b.")  # subdomains of a listed entry are blocked too
_PATH_SUFFIXES = ("ge", "s", "ing", "-tips")  # /bad -> /badge: shares the prefix string, not the segment


def _blocklist_entry(rng: random.Random) -> tuple[str, str, str]:
    """(category, "domains" or "urls", entry)."""
    category = rng.choice(sorted(BLOCKLIST))
    kind = "urls" if rng.random() < 0.3 else "domains"
    return category, kind, rng.choice(BLOCKLIST[category][kind])


def _blocked_base(rng: random.Random, domain: str) -> tuple[str, str]:
    """(URL without the page's own path, category): on a listed host, a subdomain of one, or a URL prefix."""
    category, kind, entry = _blocklist_entry(rng)
    if kind == "urls":
        return f"https://{entry}", category
    return f"https://{rng.choice(('', *_HOST_PREFIXES))}{entry}/{domain}", category


def _lookalike_base(rng: random.Random, domain: str) -> str:
    """A URL resembling a blocklist entry that a correct matcher (whole labels, whole path segments) keeps."""
    _, kind, entry = _blocklist_entry(rng)
    if kind == "urls":
        host, path = entry.split("/", 1)
        if rng.random() < 0.6:
            return f"https://{host}/{path}{rng.choice(_PATH_SUFFIXES)}"
        return f"https://{host}/{domain}"
    hosts = [f"not{entry}", f"{entry}.net", f"{entry.replace('.', '-')}.com"]
    if entry == LISTED_SUBDOMAIN:  # the parent and siblings of a listed subdomain are not listed
        parent = entry.split(".", 1)[1]
        hosts += [parent, f"www.{parent}", f"news.{parent}"]
    return f"https://{rng.choice(hosts)}/{domain}"


# Toxic pages and the toxicity reference set ------------------------------------------------------

FLAGGED_WORDS = {
    "en": ("idiot", "idiots", "moron", "morons", "pathetic", "loser", "losers", "stupid", "dumb", "clueless",
           "worthless", "imbecile", "brainless", "garbage", "clown"),
    "de": ("idiot", "idioten", "trottel", "vollidiot", "depp", "versager", "dummkopf", "blödmann",
           "schwachkopf", "erbärmlich", "armselig", "nichtsnutz"),
}
_INSULTS = (
    "You are a complete idiot if you think a new {noun} will fix that.",
    "Only a moron would set up the {noun} like that and then ask us for help.",
    "What a pathetic answer, did you even read the first post?",
    "Nobody here cares about your {noun}, you sad loser.",
    "Your advice about the {noun} is garbage and so is every post you write.",
    "Stop posting, {user}, you are clearly too stupid to understand how a {noun} works.",
    "Honestly you are the most pathetic poster on this whole forum.",
    "Go back to your {noun} and leave the real discussion to people with a brain.",
    "Everything you wrote about the {noun} is worthless garbage.",
    "Are you really this dumb or do you just enjoy wasting our time?",
    "Learn to read before you reply, you clueless idiot.",
    "Typical loser move, blaming the {noun} for your own mistakes.",
    "Only an idiot would buy that {noun} and then complain about it here.",
    "You people are morons, the answer was in the manual all along.",
    "Shut up, {user}, nobody asked for your pathetic opinion.",
    "This thread was fine until a moron like you showed up.",
    "Get lost, {user}, your posts are pure garbage.",
    "I cannot believe how stupid you are, it is a simple question about a {noun}.",
)
_CONTEMPT = (  # abusive without a flagged word: what a word list misses
    "Nobody wants you here, crawl back under whatever rock you came from.",
    "Do everyone a favour and stop typing, every reply you write makes this thread worse.",
    "You contribute nothing but noise, go bother some other forum.",
    "People like you are the reason nobody asks questions here anymore.",
    "Your opinion is worth less than the {noun} you keep whining about.",
    "Nobody will miss you if you never post again, {user}.",
)
_CLEAN_REPLIES = (
    "Thanks for the detailed answer, the {noun} works fine now.",
    "I had the same problem with my {noun} last week and a reboot fixed it.",
    "Good point, I had not thought about the {noun} at all.",
    "Has anyone tried updating the {noun} before reinstalling everything?",
    "Welcome to the forum, and thanks for posting the full error message.",
    "I would check the {noun} settings first, that is usually the culprit.",
    "Great write-up, I bookmarked this thread for later.",
    "Sorry for the late reply, I was away for the weekend.",
    "Could you share a photo of the {noun} so we can see what is going on?",
    "That makes sense, I will try it tonight and report back.",
)
_BORDERLINE_BENIGN = (  # clean, yet they use words a flagged-word list reacts to
    "I hate it when my build breaks five minutes before the demo.",
    "This bug is killing me, the tests pass locally but fail on the server.",
    "The garbage collector pauses for two seconds whenever the {noun} cache fills up.",
    "Just kill the process and restart it, that clears the stuck {noun}.",
    "That was a killer feature in the last release, everyone loved it.",
    "I felt like a complete idiot when I noticed the cable was unplugged.",
    "I am such a moron, I forgot my charger at home again.",
    "The villain in that game is a pathetic loser, and the writers clearly meant him to be.",
    "Take the garbage out before the {noun} starts to smell, trust me.",
    "My old laptop is basically a dumb terminal now, but it still works.",
    "Honestly the setup was stupid simple once I read the manual.",
    "The idiot light on my dashboard came on again this morning.",
    "Losing the final match was painful, but our team played well.",
    "The clown at my niece's party was the highlight of the weekend.",
)


def _fill(rng: random.Random, template: str) -> str:
    return template.format(noun=rng.choice(VOCABULARY["forum"]), user=f"user{rng.randint(100, 9999)}")


def _toxic_forum_text(rng: random.Random) -> str:
    """A thread whose replies insult the posters: no template twice on a page, so the repetition rules
    see an ordinary thread and keep it."""
    insults = rng.sample(_INSULTS + _CONTEMPT, len(_INSULTS + _CONTEMPT))
    vocab = VOCABULARY["forum"]
    posts = [f"Posted by user{rng.randint(100, 9999)}:\n"
             + " ".join(_sentence(rng, vocab, rng.choice(".?")) for _ in range(rng.randint(2, 3)))]
    for _ in range(rng.randint(3, 6)):
        sentences = [_fill(rng, insults.pop()) for _ in range(rng.randint(1, 2))]
        sentences.insert(rng.randint(0, len(sentences)), _sentence(rng, vocab, rng.choice(".!?")))
        posts.append(f"Posted by user{rng.randint(100, 9999)}:\n" + " ".join(sentences))
    return "\n\n".join(posts)


def toxicity_doc(spec: DemoSpec, index: int) -> dict[str, str]:
    """A labelled comment of the toxicity set (its own stream, never a crawl page): toxic comments insult
    someone, a third of them without any flagged word; clean ones often use flagged words benignly."""
    rng = _rng(spec.seed, "toxicity", index)
    if rng.random() < 0.5:
        pool = _CONTEMPT if rng.random() < 0.33 else _INSULTS
        sentences = [_fill(rng, template) for template in rng.sample(pool, rng.randint(1, 2))]
        label = "toxic"
    else:
        sentences = [_fill(rng, template) for template in rng.sample(_CLEAN_REPLIES, rng.randint(1, 2))]
        if rng.random() < 0.6:
            sentences.insert(rng.randint(0, len(sentences)), _fill(rng, rng.choice(_BORDERLINE_BENIGN)))
        label = "clean"
    if rng.random() < 0.5:
        sentences.insert(rng.randint(0, len(sentences)), _fill(rng, rng.choice(_CLEAN_REPLIES)))
    deduplicated = list(dict.fromkeys(sentences))
    return {"id": f"tox-{index:06d}", "text": " ".join(deduplicated), "label": label}


def _plant(spec: DemoSpec, index: int, domain: str, text: str, base: str) -> tuple[str, str, str, Plants]:
    """(domain, text, URL base, plants) of a good English page after at most one plant, drawn from the
    page's own plant stream so unplanted pages are exactly what they were without plants."""
    rng = _rng(spec.seed, "plant", index)
    draw, edge, kind = rng.random(), 0.0, None
    for name, rate in spec.plant_rates():
        edge += rate
        if draw < edge:
            kind = name
            break
    plants = Plants()
    if kind == "pii":
        text, plants = _plant_pii(rng, text)
    elif kind == "pii_decoy":
        text, plants = _plant_pii_decoys(rng, text)
    elif kind == "leak":
        text, plants = _plant_leak(spec, rng, text)
    elif kind == "leak_decoy":
        text, plants = _plant_leak_decoy(spec, rng, text, domain)
    elif kind == "blocked":
        base, category = _blocked_base(rng, domain)
        plants = Plants(blocked_category=category)
    elif kind == "lookalike":
        base, plants = _lookalike_base(rng, domain), Plants(lookalike=True)
    elif kind == "toxic":
        domain, text, plants = "forum", _toxic_forum_text(rng), Plants(toxic=True)
        base = f"https://{rng.choice(HOSTS['forum'])}/forum"
    return domain, text, base, plants


# ------------------------------------------------------------------------------------------ pages


def original_page(spec: DemoSpec, index: int) -> Page:
    rng = _rng(spec.seed, "page", index)
    domain = rng.choices(DOMAINS, weights=DOMAIN_WEIGHTS)[0]
    lang, quality = "en", "good"
    if domain == "ads":
        quality, text = "spam", _good_text(rng, domain)
    elif rng.random() < spec.foreign_rate:
        lang = rng.choice(FOREIGN_LANGS)
        if rng.random() < spec.low_quality_rate:
            quality = rng.choice(LOW_QUALITY_KINDS)
            text = _foreign_low_quality_text(rng, lang, quality)
        else:
            text = _foreign_text(rng, lang, spec)
    elif rng.random() < spec.low_quality_rate:
        quality = rng.choice(LOW_QUALITY_KINDS)
        text = _low_quality_text(rng, domain, quality)
    else:
        text = _good_text(rng, domain)
    host = LANGUAGES[lang].host if lang != "en" else rng.choice(HOSTS[domain])
    day = rng.randint(0, 364)
    clock = f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00"
    date = f"2024-{1 + day // 31 % 12:02d}-{1 + day % 28:02d}T{clock}Z"
    base, plants = f"https://{host}/{domain}", Plants()
    if lang == "en" and quality == "good":
        domain, text, base, plants = _plant(spec, index, domain, text, base)
    slug = "-".join(re.findall(r"[a-z]+", text.lower())[:3]) or "page"
    return Page(f"demo-{index:08d}", domain, lang, quality, f"{base}/{index:08d}-{slug}", date, text, plants)


def _frozen_tokens(text: str, tokens: Sequence[str], protected: Sequence[str]) -> set[int]:
    """Positions of the space-separated tokens that overlap an occurrence of a protected string."""
    spans = []
    for value in protected:
        start = text.find(value)
        while value and start >= 0:
            spans.append((start, start + len(value)))
            start = text.find(value, start + 1)
    frozen: set[int] = set()
    offset = 0
    for position, token in enumerate(tokens):  # a loop over one page's tokens, only for planted pages
        end = offset + len(token)
        if any(start < end and offset < stop for start, stop in spans):
            frozen.add(position)
        offset = end + 1
    return frozen


def near_duplicate(text: str, target: float, rng: random.Random, vocab: Sequence[str],
                   protected: Sequence[str] = ()) -> tuple[str, float]:
    """Substitute words (in a fixed random order) until the 5-gram Jaccard is nearest the target; tokens
    inside a ``protected`` string (planted values) are never substituted."""
    tokens = text.split(" ")
    original = word_shingles(text)
    frozen = _frozen_tokens(text, tokens, protected) if protected else set()
    order = [position for position in range(len(tokens)) if position not in frozen]
    rng.shuffle(order)
    replacements = [rng.choice(vocab) + "x" for _ in order]  # "x": never equal to the word replaced

    def edited(count: int) -> str:
        changed = list(tokens)
        for position, word in zip(order[:count], replacements[:count], strict=True):
            suffix = changed[position][len(changed[position].rstrip(".,!?:;\n")):]
            changed[position] = word + suffix
        return " ".join(changed)

    low, high = 0, len(order)
    while low < high:  # smallest count whose similarity drops to the target or below
        middle = (low + high) // 2
        if jaccard(original, word_shingles(edited(middle))) > target:
            low = middle + 1
        else:
            high = middle
    best = min({max(low - 1, 1), low},
               key=lambda count: abs(jaccard(original, word_shingles(edited(count))) - target))
    result = edited(best)
    return result, jaccard(original, word_shingles(result))


def _protected_strings(spec: DemoSpec, plants: Plants) -> tuple[str, ...]:
    """What a near-duplicate must keep verbatim so that it still carries its root's plants."""
    spans = [*plants.pii_values, *plants.pii_decoys]
    if plants.benchmark_item is not None:
        position = int(plants.benchmark_item.rsplit("-", 1)[1])
        spans.append(format_quiz(benchmark_items(spec.seed, spec.benchmark_items)[position]))
    return tuple(spans)


@dataclass
class TruthRow:
    id: str
    file: str
    line: int
    domain: str
    lang: str
    quality: str
    dup_kind: str
    dup_of: str | None
    group_id: str
    jaccard: float | None
    jaccard_target: float | None
    pii_types: list[str]
    pii_values: list[str]
    pii_decoys: list[str]
    benchmark_item: str | None
    leak_decoy: bool
    blocked_category: str | None
    lookalike: bool
    toxic: bool


TRUTH_SCHEMA = pa.schema([
    ("id", pa.string()), ("file", pa.string()), ("line", pa.int64()), ("domain", pa.string()),
    ("lang", pa.string()), ("quality", pa.string()), ("dup_kind", pa.string()), ("dup_of", pa.string()),
    ("group_id", pa.string()), ("jaccard", pa.float64()), ("jaccard_target", pa.float64()),
    ("pii_types", pa.list_(pa.string())), ("pii_values", pa.list_(pa.string())),
    ("pii_decoys", pa.list_(pa.string())), ("benchmark_item", pa.string()), ("leak_decoy", pa.bool_()),
    ("blocked_category", pa.string()), ("lookalike", pa.bool_()), ("toxic", pa.bool_()),
])


def page_at(spec: DemoSpec, index: int) -> tuple[Page, Role, float | None]:
    role = role_of(spec, index)
    if role.kind == "original":
        return original_page(spec, index), role, None
    root = original_page(spec, role.target)  # type: ignore[arg-type]
    rng = _rng(spec.seed, "dup", index)
    page = Page(f"demo-{index:08d}", root.domain, root.lang, root.quality,
                root.url.replace(f"{role.target:08d}", f"{index:08d}-copy"), root.date, root.text,
                root.plants)
    by_characters = root.lang != "en" and LANGUAGES[root.lang].by_characters
    tokens = len(root.text.split(" ") if by_characters else root.text.split())  # zh, ja: edits need spaces
    if role.kind == "exact" or tokens < 4 * SHINGLE_SIZE:
        return page, Role("exact", role.target), 1.0
    vocab = FOREIGN[root.lang] if root.lang != "en" else VOCABULARY[root.domain]
    page.text, measured = near_duplicate(root.text, role.jaccard_target or 0.8, rng, vocab,
                                         _protected_strings(spec, root.plants))
    return page, role, measured


def _malformed_line(spec: DemoSpec, index: int) -> tuple[str, bytes] | None:
    rng = _rng(spec.seed, "malformed", index)
    if rng.random() >= spec.malformed_rate:
        return None
    kind = rng.choice(MALFORMED_KINDS)
    ident = f"bad-{index:08d}"
    if kind == "invalid_json":
        line = json.dumps({"id": ident, "text": "truncated record"})[: rng.randint(5, 25)].encode()
    elif kind == "invalid_utf8":
        line = b'{"id": "' + ident.encode() + b'", "text": "caf\xe9 au lait \xff\xfe"}'
    elif kind == "missing_text":
        line = json.dumps({"id": ident, "url": "https://example.com/missing"}).encode()
    elif kind == "empty_text":
        line = json.dumps({"id": ident, "text": rng.choice(["", "   ", "\n\t"])}).encode()
    elif kind == "non_string_text":
        line = json.dumps({"id": ident, "text": rng.choice([42, ["a", "list"], {"nested": True}])}).encode()
    else:
        line = json.dumps({"id": ident, "text": "overflow " * (spec.oversized_bytes // 9 + 1)}).encode()
    return kind, line


def reference_page(spec: DemoSpec, index: int) -> Page:
    """A page of the reference set, never in the crawl: good text (or spam for ``ads``), in English or, at
    ``foreign_rate``, in one of the other languages (curated text of every language the demo keeps)."""
    rng = _rng(spec.seed, "reference", index)
    domain = rng.choices(DOMAINS, weights=DOMAIN_WEIGHTS)[0]
    if domain != "ads" and rng.random() < spec.foreign_rate:
        lang = rng.choice(FOREIGN_LANGS)
        return Page(f"ref-{index:08d}", domain, lang, "good", f"https://{LANGUAGES[lang].host}/ref-{index:08d}",
                    "2024-01-01T00:00:00Z", _foreign_text(rng, lang, spec))
    host = rng.choice(HOSTS[domain])
    return Page(f"ref-{index:08d}", domain, "en", "spam" if domain == "ads" else "good",
                f"https://{host}/{domain}/ref-{index:08d}", "2024-01-01T00:00:00Z", _good_text(rng, domain))


def write_reference(out_dir: str, spec: DemoSpec) -> str:
    """``<out>/reference/reference.jsonl.gz`` with id, url, lang, domain, quality and text per page."""
    target = os.path.join(out_dir, "reference", "reference.jsonl.gz")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with gzip.open(target, "wb", compresslevel=5) as handle:
        for index in range(spec.reference_docs):
            page = reference_page(spec, index)
            record = {"id": page.id, "url": page.url, "lang": page.lang, "domain": page.domain,
                      "quality": page.quality, "text": page.text}
            handle.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")
    return target


DEMO_TOKENIZER_VOCAB = 8192


def byte_level_bpe(texts: Iterable[str], vocab_size: int) -> Any:
    """A byte-level BPE trained on ``texts``: lossless (decode(encode(text)) == text for any text) with
    ``<|endoftext|>`` as its end-of-document token (id 0)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


def write_tokenizer(out_dir: str, spec: DemoSpec, pages: int = 2000) -> str:
    """``<out>/tokenizer/tokenizer.json``: a :func:`byte_level_bpe` trained on the demo's reference pages, so
    the demo counts and exports exact token ids without downloading a tokenizer. A real run points
    ``mix.tokens.tokenizer`` at its model's tokenizer.json."""
    target = os.path.join(out_dir, "tokenizer", "tokenizer.json")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    count = min(pages, spec.reference_docs) or pages
    texts = ((reference_page(spec, index) if spec.reference_docs else original_page(spec, index)).text
             for index in range(count))
    byte_level_bpe(texts, DEMO_TOKENIZER_VOCAB).save(target)
    return target


def write_benchmark(out_dir: str, spec: DemoSpec) -> str:
    """``<out>/benchmarks/demo_qa.jsonl``: the items leak pages print (id, question, 4 choices, answer)."""
    target = os.path.join(out_dir, "benchmarks", f"{BENCHMARK_NAME}.jsonl")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "w", encoding="utf-8") as handle:
        for item in benchmark_items(spec.seed, spec.benchmark_items):
            handle.write(json.dumps(item.to_json(), ensure_ascii=False) + "\n")
    return target


def write_blocklist(out_dir: str) -> str:
    """``<out>/blocklist/<category>/domains`` and ``.../urls`` in the UT1 layout, with comment headers."""
    root = os.path.join(out_dir, "blocklist")
    notes = {"domains": "one host per line; the host and all its subdomains are listed",
             "urls": "one URL prefix per line (host/path, no scheme); it covers whole path segments below it"}
    for category, lists in BLOCKLIST.items():
        os.makedirs(os.path.join(root, category), exist_ok=True)
        for kind, entries in lists.items():
            with open(os.path.join(root, category, kind), "w", encoding="utf-8") as handle:
                handle.write(f"# curate demo blocklist, category {category} (UT1 layout)\n# {notes[kind]}\n")
                handle.write("".join(f"{entry}\n" for entry in entries))
    return root


def write_wordlists(out_dir: str) -> str:
    """``<out>/wordlists/<lang>.txt``: flagged words, one a line, under a '#' comment header."""
    root = os.path.join(out_dir, "wordlists")
    os.makedirs(root, exist_ok=True)
    for lang, words in FLAGGED_WORDS.items():
        with open(os.path.join(root, f"{lang}.txt"), "w", encoding="utf-8") as handle:
            handle.write(f"# curate demo flagged words ({lang}): insults, lower case, one a line\n")
            handle.write("".join(f"{word}\n" for word in words))
    return root


def write_toxicity(out_dir: str, spec: DemoSpec) -> tuple[str, dict[str, int]]:
    """``<out>/reference/toxicity.jsonl.gz`` (id, text, label) and the count of each label."""
    target = os.path.join(out_dir, "reference", "toxicity.jsonl.gz")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    labels: Counter[str] = Counter()
    with gzip.open(target, "wb", compresslevel=5) as handle:
        for index in range(spec.toxicity_docs):
            record = toxicity_doc(spec, index)
            labels[record["label"]] += 1
            handle.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")
    return target, dict(sorted(labels.items()))


def _shard_name(shard: int) -> str:
    return f"shard-{shard:05d}.jsonl.gz"


def _plant_names(plants: Plants) -> list[str]:
    """The plant kinds a page carries (summary counts)."""
    flags = {"pii": bool(plants.pii_types), "pii_decoy": bool(plants.pii_decoys),
             "leak": plants.benchmark_item is not None, "leak_decoy": plants.leak_decoy,
             "blocked": plants.blocked_category is not None, "lookalike": plants.lookalike,
             "toxic": plants.toxic}
    return [name for name, present in flags.items() if present]


def _write_shard(out_dir: str, spec: DemoSpec, shard: int) -> dict[str, object]:
    first = shard * spec.shard_docs
    last = min(spec.docs, first + spec.shard_docs)
    name = _shard_name(shard)
    truth: list[TruthRow] = []
    malformed: list[dict[str, object]] = []
    plants: Counter[str] = Counter()
    pii_types: Counter[str] = Counter()
    blocked: Counter[str] = Counter()
    line_number = 0
    with gzip.open(os.path.join(out_dir, name), "wb", compresslevel=5) as handle:
        for index in range(first, last):
            page, role, measured = page_at(spec, index)
            record = {"id": page.id, "url": page.url, "date": page.date, "text": page.text}
            handle.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")
            line_number += 1
            root_id = None if role.kind == "original" else f"demo-{role.target:08d}"
            planted = page.plants
            truth.append(TruthRow(page.id, name, line_number, page.domain, page.lang, page.quality, role.kind,
                                  root_id, root_id or page.id, measured,
                                  role.jaccard_target if role.kind == "near" else None,
                                  list(planted.pii_types), list(planted.pii_values), list(planted.pii_decoys),
                                  planted.benchmark_item, planted.leak_decoy, planted.blocked_category,
                                  planted.lookalike, planted.toxic))
            plants.update(_plant_names(planted))
            pii_types.update(planted.pii_types)
            if planted.blocked_category is not None:
                blocked[planted.blocked_category] += 1
            bad = _malformed_line(spec, index)
            if bad:
                handle.write(bad[1] + b"\n")
                line_number += 1
                malformed.append({"file": name, "line": line_number, "kind": bad[0]})
    truth_dir = os.path.join(out_dir, "truth", "docs")
    os.makedirs(truth_dir, exist_ok=True)
    table = pa.Table.from_pylist([asdict(row) for row in truth], schema=TRUTH_SCHEMA)
    pq.write_table(table, os.path.join(truth_dir, f"part-{shard:05d}.parquet"))
    counts = Counter(row.dup_kind for row in truth)
    return {"shard": name, "documents": len(truth), "malformed": malformed,
            "domains": Counter(r.domain for r in truth), "langs": Counter(r.lang for r in truth),
            "quality": Counter(r.quality for r in truth), "dup_kinds": counts, "plants": plants,
            "pii_types": pii_types, "blocked_categories": blocked}


def write_demo_corpus(out_dir: str, spec: DemoSpec) -> dict[str, object]:
    """Write ``shard-*.jsonl.gz``, ``truth/``, ``reference/``, ``benchmarks/``, ``tokenizer/``,
    ``blocklist/`` and ``wordlists/``; returns (and saves as ``truth/summary.json``) a summary with the
    count of each plant."""
    _check_spec(spec)
    os.makedirs(out_dir, exist_ok=True)
    shards = range((spec.docs + spec.shard_docs - 1) // spec.shard_docs)
    if spec.workers > 1 and len(shards) > 1:
        with ProcessPoolExecutor(max_workers=spec.workers) as pool:
            results = list(pool.map(_write_shard, [out_dir] * len(shards), [spec] * len(shards), shards))
    else:
        results = [_write_shard(out_dir, spec, shard) for shard in shards]
    malformed = [row for result in results for row in result["malformed"]]  # type: ignore[union-attr]
    if spec.reference_docs > 0:
        write_reference(out_dir, spec)
    write_benchmark(out_dir, spec)
    write_tokenizer(out_dir, spec)
    write_blocklist(out_dir)
    write_wordlists(out_dir)
    _, toxicity_labels = write_toxicity(out_dir, spec)

    def total(key: str) -> dict[str, int]:
        merged: Counter[str] = Counter()
        for result in results:
            merged.update(result[key])  # type: ignore[arg-type]
        return dict(sorted(merged.items()))

    summary = {
        "spec": asdict(spec),
        "shards": len(results),
        "documents": sum(int(r["documents"]) for r in results),  # type: ignore[call-overload]
        "malformed": len(malformed),
        "records": sum(int(r["documents"]) for r in results) + len(malformed),  # type: ignore[call-overload]
        "malformed_kinds": dict(Counter(str(row["kind"]) for row in malformed)),
        "domains": total("domains"),
        "langs": total("langs"),
        "quality": total("quality"),
        "dup_kinds": total("dup_kinds"),
        "reference_docs": spec.reference_docs,
        "plants": {kind: total("plants").get(kind, 0) for kind in PLANT_KINDS},
        "pii_types": total("pii_types"),
        "blocked_categories": total("blocked_categories"),
        "benchmark_items": spec.benchmark_items,
        "toxicity_docs": spec.toxicity_docs,
        "toxicity_labels": toxicity_labels,
    }
    truth_dir = os.path.join(out_dir, "truth")
    with open(os.path.join(truth_dir, "malformed.jsonl"), "w", encoding="utf-8") as handle:
        for row in malformed:
            handle.write(json.dumps(row) + "\n")
    with open(os.path.join(truth_dir, "summary.json"), "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=2, sort_keys=True)
    return summary


def iter_pages(spec: DemoSpec, start: int = 0, stop: int | None = None) -> Iterator[Page]:
    """Pages in index order (no malformed lines); handy for benchmarks that skip the files."""
    for index in range(start, spec.docs if stop is None else stop):
        yield page_at(spec, index)[0]
