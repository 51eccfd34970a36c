"""Deterministic synthetic web corpus with ground truth, for demos, tests and benchmarks.

Every document is a pure function of ``(seed, index)``, so shards are generated independently (in
parallel, in constant memory) and a duplicate of document ``j`` is made by regenerating ``j``.

What it plants, all recorded under ``<out>/truth``:
* six domains with their own vocabularies, styles and hosts (encyclopedia, news, forum, code_docs,
  recipes, ads); ``ads`` pages are spam;
* low-quality pages: boilerplate, keyword stuffing, repeated lines, very short pages;
* exact duplicates and near-duplicates made by word substitutions until the word-5-gram Jaccard
  similarity to the original is close to a target (the measured value is recorded);
* non-English pages (de, fr, es, it, pt, nl);
* malformed lines of every quarantine kind (bad JSON, invalid UTF-8, missing/empty/non-string text,
  oversized text);
* a separate labelled reference set (``<out>/reference``): well-formed English pages of every domain
  with their domain and quality, drawn from their own random stream. It stands in for curated text
  (positives of the quality classifier, labelled documents of the topic classifier).
"""

from __future__ import annotations

import gzip
import json
import os
import random
import re
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field

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

FOREIGN = {
    "de": (
        "der die das und ist nicht ein eine zu den von mit sich des auf für im dem auch es an als "
        "wird werden aus er hat dass sie nach bei einer um am sind noch wie einem über einen so zum "
        "haben nur oder aber vor zur bis mehr durch man sein wurde sei Jahr Stadt Zeit Menschen "
        "Regierung Arbeit Geschichte Leben heute immer wieder zwischen unter gegen Land Kinder"
    ).split(),
    "fr": (
        "le la les de des du et est un une en que qui dans pour pas sur au avec il elle ce ne se plus "
        "par son sont sa mais ou comme nous vous leur tout aussi fait été avoir être cette entre sans "
        "sous après avant très bien encore toujours ville pays gouvernement travail histoire vie "
        "aujourd'hui enfants monde temps année jour femmes hommes"
    ).split(),
    "es": (
        "el la los las de del y que en un una es por con para no se su al lo como más pero sus le ya "
        "o este sí porque esta entre cuando muy sin sobre también me hasta hay donde quien desde todo "
        "nos durante todos uno les ni contra otros ese eso ante ellos año ciudad gobierno trabajo "
        "historia vida hoy niños mundo tiempo país mujeres"
    ).split(),
    "it": (
        "il la di che e un una per non sono del della con si da lo le gli dei nel alla come più ma "
        "anche questo questa hanno essere stato molto tutti quando dove perché ancora sempre oggi "
        "città governo lavoro storia vita bambini mondo tempo anno paese donne uomini"
    ).split(),
    "pt": (
        "o a os as de do da dos das e que em um uma para com não por se na no mais mas como foi ao "
        "ele ela isso seu sua ou quando muito já também só pelo pela até está estão entre depois sem "
        "mesmo cidade governo trabalho história vida hoje crianças mundo tempo ano país"
    ).split(),
    "nl": (
        "de het een en van in is dat op te zijn met voor niet aan er om ook als bij maar door wordt "
        "nog naar heeft hij zij ze dan worden kan tot uit over deze was hun meer geen wel waar stad "
        "regering werk geschiedenis leven vandaag kinderen wereld tijd jaar land"
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
FOREIGN_HOSTS = {"de": "nachrichten.de", "fr": "journal.fr", "es": "noticias.es", "it": "notizie.it",
                 "pt": "noticias.pt", "nl": "nieuws.nl"}
BOILERPLATE = [
    "Home | About | Contact | Privacy Policy", "Skip to main content", "Accept cookies",
    "Subscribe to our newsletter", "Copyright 2024 All rights reserved", "Share on Facebook",
    "Follow us on Twitter", "Log in | Register", "Terms of use", "Back to top", "Related posts",
    "Previous | Next", "Search this site", "Menu", "Advertisement",
]


@dataclass(frozen=True)
class DemoSpec:
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


@dataclass
class Page:
    id: str
    domain: str
    lang: str
    quality: str
    url: str
    date: str
    text: str


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


def _foreign_text(rng: random.Random, lang: str) -> str:
    vocab = FOREIGN[lang]
    paragraphs = []
    for _ in range(rng.randint(3, 6)):
        sentences = []
        for _ in range(rng.randint(3, 6)):
            words = [rng.choice(vocab) for _ in range(rng.randint(8, 18))]
            words[0] = words[0].capitalize()
            sentences.append(" ".join(words) + ".")
        paragraphs.append(" ".join(sentences))
    return "\n\n".join(paragraphs)


def original_page(spec: DemoSpec, index: int) -> Page:
    rng = _rng(spec.seed, "page", index)
    domain = rng.choices(DOMAINS, weights=DOMAIN_WEIGHTS)[0]
    lang, quality = "en", "good"
    if domain == "ads":
        quality, text = "spam", _good_text(rng, domain)
    elif rng.random() < spec.foreign_rate:
        lang = rng.choice(sorted(FOREIGN))
        text = _foreign_text(rng, lang)
    elif rng.random() < spec.low_quality_rate:
        quality = rng.choice(LOW_QUALITY_KINDS)
        text = _low_quality_text(rng, domain, quality)
    else:
        text = _good_text(rng, domain)
    host = FOREIGN_HOSTS[lang] if lang != "en" else rng.choice(HOSTS[domain])
    url = f"https://{host}/{domain}/{index:08d}-{'-'.join(re.findall(r'[a-z]+', text.lower())[:3])}"
    day = rng.randint(0, 364)
    clock = f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00"
    date = f"2024-{1 + day // 31 % 12:02d}-{1 + day % 28:02d}T{clock}Z"
    return Page(f"demo-{index:08d}", domain, lang, quality, url, date, text)


def near_duplicate(text: str, target: float, rng: random.Random, vocab: list[str]) -> tuple[str, float]:
    """Substitute words (in a fixed random order) until the 5-gram Jaccard is nearest the target."""
    tokens = text.split(" ")
    original = word_shingles(text)
    order = list(range(len(tokens)))
    rng.shuffle(order)
    replacements = [rng.choice(vocab) + "x" for _ in order]  # "x": never equal to the word replaced

    def edited(count: int) -> str:
        changed = list(tokens)
        for position, word in zip(order[:count], replacements[:count], strict=True):
            suffix = changed[position][len(changed[position].rstrip(".,!?:;\n")):]
            changed[position] = word + suffix
        return " ".join(changed)

    low, high = 0, len(tokens)
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


def page_at(spec: DemoSpec, index: int) -> tuple[Page, Role, float | None]:
    role = role_of(spec, index)
    if role.kind == "original":
        return original_page(spec, index), role, None
    root = original_page(spec, role.target)  # type: ignore[arg-type]
    rng = _rng(spec.seed, "dup", index)
    page = Page(f"demo-{index:08d}", root.domain, root.lang, root.quality,
                root.url.replace(f"{role.target:08d}", f"{index:08d}-copy"), root.date, root.text)
    if role.kind == "exact" or len(root.text.split()) < 4 * SHINGLE_SIZE:
        return page, Role("exact", role.target), 1.0
    vocab = FOREIGN[root.lang] if root.lang != "en" else VOCABULARY[root.domain]
    page.text, measured = near_duplicate(root.text, role.jaccard_target or 0.8, rng, vocab)
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
    """A page of the reference set: good English text (or spam for ``ads``), never in the crawl."""
    rng = _rng(spec.seed, "reference", index)
    domain = rng.choices(DOMAINS, weights=DOMAIN_WEIGHTS)[0]
    host = rng.choice(HOSTS[domain])
    return Page(f"ref-{index:08d}", domain, "en", "spam" if domain == "ads" else "good",
                f"https://{host}/{domain}/ref-{index:08d}", "2024-01-01T00:00:00Z", _good_text(rng, domain))


def write_reference(out_dir: str, spec: DemoSpec) -> str:
    """``<out>/reference/reference.jsonl.gz`` with id, url, domain, quality and text per page."""
    target = os.path.join(out_dir, "reference", "reference.jsonl.gz")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with gzip.open(target, "wb", compresslevel=5) as handle:
        for index in range(spec.reference_docs):
            page = reference_page(spec, index)
            record = {"id": page.id, "url": page.url, "domain": page.domain, "quality": page.quality,
                      "text": page.text}
            handle.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")
    return target


def _shard_name(shard: int) -> str:
    return f"shard-{shard:05d}.jsonl.gz"


def _write_shard(out_dir: str, spec: DemoSpec, shard: int) -> dict[str, object]:
    first = shard * spec.shard_docs
    last = min(spec.docs, first + spec.shard_docs)
    name = _shard_name(shard)
    truth: list[TruthRow] = []
    malformed: list[dict[str, object]] = []
    line_number = 0
    with gzip.open(os.path.join(out_dir, name), "wb", compresslevel=5) as handle:
        for index in range(first, last):
            page, role, measured = page_at(spec, index)
            record = {"id": page.id, "url": page.url, "date": page.date, "text": page.text}
            handle.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")
            line_number += 1
            root_id = None if role.kind == "original" else f"demo-{role.target:08d}"
            truth.append(TruthRow(page.id, name, line_number, page.domain, page.lang, page.quality, role.kind,
                                  root_id, root_id or page.id, measured,
                                  role.jaccard_target if role.kind == "near" else None))
            bad = _malformed_line(spec, index)
            if bad:
                handle.write(bad[1] + b"\n")
                line_number += 1
                malformed.append({"file": name, "line": line_number, "kind": bad[0]})
    truth_dir = os.path.join(out_dir, "truth", "docs")
    os.makedirs(truth_dir, exist_ok=True)
    table = pa.Table.from_pylist([asdict(row) for row in truth])
    pq.write_table(table, os.path.join(truth_dir, f"part-{shard:05d}.parquet"))
    counts = Counter(row.dup_kind for row in truth)
    return {"shard": name, "documents": len(truth), "malformed": malformed,
            "domains": Counter(r.domain for r in truth), "langs": Counter(r.lang for r in truth),
            "quality": Counter(r.quality for r in truth), "dup_kinds": counts}


def write_demo_corpus(out_dir: str, spec: DemoSpec) -> dict[str, object]:
    """Write ``shard-*.jsonl.gz`` and ``truth/``; returns (and saves) a summary."""
    if spec.docs <= 0 or spec.shard_docs <= 0:
        raise ValueError("docs and shard_docs must be positive")
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
