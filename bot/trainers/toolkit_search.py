"""Ranked search over the RestART-kit, for `/toolkit <words>` and inline queries.

The kit is about fifty hand-picked resources. An index that small fits in a few dictionaries, is
built in a few hundredths of a second and answers a query in well under a millisecond, so a
search engine (Whoosh, SQLite FTS, Elasticsearch) or a stemming library would only add a
dependency, a process or a file to keep in sync. This module uses the standard library only.

How a query is matched
----------------------
* Text is passed through `normalise` (casefold, accents and Greek tonos dropped, punctuation
  turned into spaces), split into words, and each word through `stem` (light plural and
  inflection folding for English, Italian, Spanish and Greek). "Licenze", "licenza", "licence"
  and "licences" meet their own language's forms; translations meet each other only because the
  kit lists keywords in every shipped language.
* The last query word (the one the trainer may still be typing), and any word the index does
  not know as a whole word, also matches the indexed words it is a prefix of, once it has 3 or
  more characters: "copyr" finds "copyright". A prefix match counts a little less than a
  whole-word match. Earlier, known words are not expanded, so "fact checking" does not drift
  to "two-factor". One-character words ("a", "e", the "s" of "Europe's") are ignored.
* Each resource is scored with BM25F: the term frequencies of its fields are weighted (name 3,
  keywords in all languages 2, topics/tags/type 1.5, description 1, extra text 1) and
  length-normalised per field before BM25's saturation and inverse document frequency are
  applied. A competence tag such as "digcomp:3.3" is one term; "digcomp:3" finds area 3.
* A query word contributes the score of its best-matching term (prefix expansions never add
  up), the word scores are summed and multiplied by the share of query words the resource
  matches, so a resource matching more of the words ranks higher.
* The resource name gets a final say. A query that is the whole name, the beginning of the name,
  or (two or more words) a phrase in the name lifts the resource above every resource without
  such a match, in that order.
* Ties are broken by name, then id, so the order is the same on every run.

Any string is a valid query: words that match nothing are ignored, a query without words
returns `[]`, and only the first `MAX_QUERY_CHARS` characters are read.
"""

from __future__ import annotations

import math
import re
import unicodedata
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bot.content.catalog import Catalog
from bot.content.model import Resource, Topic

MAX_QUERY_CHARS = 500
MAX_QUERY_WORDS = 32
MIN_PREFIX = 3
PREFIX_WEIGHT = 0.8

FIELD_WEIGHTS: dict[str, float] = {
    "name": 3.0,
    "keywords": 2.0,
    "topics": 1.5,
    "what": 1.0,
    "extra": 1.0,
}
K1 = 1.2
B = 0.75

# `stem`: the first suffix in this order that the word ends with and whose removal leaves at
# least MIN_STEM characters is removed; a word with a digit is left alone. Latin and Greek
# endings never overlap, so one list serves all four languages.
MIN_STEM = 4
_SUFFIXES = (
    # three letters: English -ing, Greek plural endings
    "ing",
    "ους",
    "εις",
    # two letters: English/Spanish plurals (-es, -as, -os), Greek case and number endings
    "es",
    "as",
    "os",
    "ες",
    "ων",
    "ας",
    "ης",
    "ος",
    "ου",
    "οι",
    # one letter: English plural -s, the Italian/Spanish/Greek gender and number vowels
    "s",
    "a",
    "e",
    "i",
    "o",
    "α",
    "η",
    "ο",
    "ι",
    "ε",
)

_WORD = re.compile(r"\d+(?:\.\d+)+|[^\W_]+")
# A competence tag (see bot.content.model.TAG_PATTERN) is one search term, not three words:
# split up, every resource would contain "digcomp" and the DigComp resource would drown.
_TAG = re.compile(r"\b(?:digcomp|entrecomp|lifecomp):[a-z0-9]+(?:\.[a-z0-9]+)*")


def normalise(text: str) -> str:
    """Casefold, drop accents and other combining marks, turn punctuation into spaces.

    The result is the words of `text` separated by single spaces: "Fact-checking!" → "fact
    checking", "città" → "citta", "ψηφιακές" → "ψηφιακες" (a Greek word keeps its final ς).
    A decimal point between digits is kept, so "DigComp 2.2" and the tag "digcomp:3.3" keep
    their version and competence numbers as words ("2.2", "3.3").
    """
    folded = unicodedata.normalize("NFKD", text.casefold()).casefold()
    bare = "".join(ch for ch in folded if not unicodedata.combining(ch))
    words = _WORD.findall(bare)
    # casefold() turns the final sigma ς into σ; write it back the way Greek is spelt.
    return " ".join(w[:-1] + "ς" if w.endswith("σ") else w for w in words)


def stem(token: str) -> str:
    """Fold plurals and common inflections of one word, for search (not a linguistic stemmer).

    The word is normalised first. Then, in order:

    1. a word containing a digit is returned as it is ("2030", "3d", "covid19");
    2. English "-ies" becomes "-y" if that leaves at least `MIN_STEM` characters
       ("copies" → "copy", "technologies" → "technology");
    3. otherwise the first suffix in `_SUFFIXES` (longest first) that the word ends with, and
       whose removal leaves at least `MIN_STEM` characters, is removed. Only one suffix goes.

    So "licences"/"licence" → "licenc", "licenze"/"licenza" → "licenz", "licencias"/"licencia"
    → "licenci", "games"/"game" → "game", "δεξιότητες"/"δεξιότητα"/"δεξιοτήτων" → "δεξιοτητ".
    """
    return _stem(normalise(token))


def _stem(word: str) -> str:
    if not word or any(ch.isdigit() for ch in word):
        return word
    if word.endswith("σ"):
        word = word[:-1] + "ς"
    if word.endswith("ies") and len(word) - 2 >= MIN_STEM:
        return word[:-3] + "y"
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= MIN_STEM:
            return word[: -len(suffix)]
    return word


def _sigma(text: str) -> str:
    """Comparison key for prefixes: a prefix may stop at a σ that is final in the full word."""
    return text.replace("ς", "σ")


def _starting(sorted_words: list[str], prefix: str) -> list[str]:
    """The words of a sorted list that start with `prefix`."""
    at = end = bisect_left(sorted_words, prefix)
    while end < len(sorted_words) and sorted_words[end].startswith(prefix):
        end += 1
    return sorted_words[at:end]


def _query_words(query: str) -> list[str]:
    """The normalised words of a query, in order; a competence tag stays one word."""
    text = query.casefold()
    words: list[str] = []
    start = 0
    for tag in _TAG.finditer(text):
        words += normalise(text[start : tag.start()]).split()
        words.append(tag.group())
        start = tag.end()
    return words + normalise(text[start:]).split()


@dataclass(frozen=True)
class Hit:
    resource: Resource
    score: float


class ToolkitIndex:
    """An in-memory BM25F index of toolkit resources.

    `extra_text(resource)` may return more text to index for a resource (for example its
    description translated into Italian); it is weighted like the description. `topics`, when
    given, lets topic titles ("Copyright and open licences") count as well as topic ids.
    """

    def __init__(
        self,
        resources: Iterable[Resource],
        extra_text: Callable[[Resource], Iterable[str]] | None = None,
        *,
        topics: Iterable[Topic] = (),
    ):
        self._resources: tuple[Resource, ...] = tuple(resources)
        titles = {t.id: t.title for t in topics}
        self._names = [_sigma(normalise(r.name)) for r in self._resources]

        fields: list[dict[str, list[str]]] = []
        surface_to_stem: dict[str, str] = {}
        all_tags: set[str] = set()
        for r in self._resources:
            texts = {
                "name": [r.name],
                "keywords": [kw for lang in sorted(r.keywords) for kw in r.keywords[lang]],
                "topics": [*r.topics, *(titles[t] for t in r.topics if t in titles), r.type],
                "what": [r.what],
                "extra": list(extra_text(r)) if extra_text else [],
            }
            doc: dict[str, list[str]] = {}
            for field, parts in texts.items():
                words = normalise(" ".join(parts)).split()
                doc[field] = [_stem(w) for w in words]
                for w in words:
                    surface_to_stem.setdefault(_sigma(w), _stem(w))
            tags = [tag.casefold() for tag in r.tags]
            doc["topics"] += tags
            all_tags.update(tags)
            fields.append(doc)

        count = len(self._resources)
        avg_len = {
            f: (sum(len(doc[f]) for doc in fields) / count if count else 0.0) or 1.0
            for f in FIELD_WEIGHTS
        }
        weighted: list[dict[str, float]] = []
        doc_freq: Counter[str] = Counter()
        for doc in fields:
            tf: dict[str, float] = defaultdict(float)
            for f, stems in doc.items():
                norm = 1 - B + B * len(stems) / avg_len[f]
                for term, n in Counter(stems).items():
                    tf[term] += FIELD_WEIGHTS[f] * n / norm
            weighted.append(tf)
            doc_freq.update(tf.keys())

        # postings: term → {resource position: BM25 score of that term in that resource}
        self._postings: dict[str, dict[int, float]] = defaultdict(dict)
        for i, tf in enumerate(weighted):
            for term, freq in tf.items():
                idf = math.log(1 + (count - doc_freq[term] + 0.5) / (doc_freq[term] + 0.5))
                self._postings[term][i] = idf * freq * (K1 + 1) / (freq + K1)
        self._postings = dict(self._postings)
        # Sorted vocabularies for prefix look-ups: words (surface form → stem), and tags, which
        # only a tag-like word ("digcomp:3") expands into.
        self._surfaces = sorted(surface_to_stem)
        self._surface_stem = surface_to_stem
        self._tags = sorted(all_tags)

    @classmethod
    def from_catalog(
        cls,
        catalog: Catalog,
        extra_text: Callable[[Resource], Iterable[str]] | None = None,
    ) -> ToolkitIndex:
        """The index of a catalog's toolkit (empty when the catalog has none)."""
        toolkit = catalog.toolkit
        if toolkit is None:
            return cls((), extra_text)
        return cls(toolkit.resources, extra_text, topics=toolkit.topics)

    def __len__(self) -> int:
        return len(self._resources)

    def by_topic(self, topic_id: str) -> list[Resource]:
        """The resources filed under `topic_id`, in the kit's order."""
        return [r for r in self._resources if topic_id in r.topics]

    def search(self, query: str, limit: int = 10) -> list[Hit]:
        """The best `limit` resources for `query`, best first; `[]` when nothing matches."""
        if not query or limit <= 0:
            return []
        query = query[:MAX_QUERY_CHARS]
        words = _query_words(query)[:MAX_QUERY_WORDS]
        if not words:
            return []

        # Each distinct query word: its best score in each resource it matches.
        per_word: list[dict[int, float]] = []
        for word in dict.fromkeys(w for w in words if len(w) > 1):
            terms = self._terms_for(word, prefix=word == words[-1])
            scores: dict[int, float] = {}
            for term, weight in terms.items():
                for i, s in self._postings[term].items():
                    if weight * s > scores.get(i, 0.0):
                        scores[i] = weight * s
            if scores:
                per_word.append(scores)
        if not per_word:
            return []

        base: dict[int, float] = defaultdict(float)
        matched: Counter[int] = Counter()
        for scores in per_word:
            for i, s in scores.items():
                base[i] += s
                matched[i] += 1
        for i in base:
            base[i] *= matched[i] / len(per_word)

        phrase = _sigma(normalise(query))
        top = max(base.values())
        ranked: list[Hit] = []
        for i, score in base.items():
            tier = self._name_tier(self._names[i], phrase, len(words))
            ranked.append(Hit(self._resources[i], round(score + tier * (top + 1), 6)))
        ranked.sort(key=lambda h: (-h.score, h.resource.name.casefold(), h.resource.id))
        return ranked[:limit]

    def _terms_for(self, word: str, *, prefix: bool) -> dict[str, float]:
        """Index terms a query word matches, with weights: 1 for its stem, less for prefixes.

        Prefixes are expanded when `prefix` is true or when the word's stem is not indexed.
        """
        terms: dict[str, float] = {}
        own = _stem(word)
        known = own in self._postings
        if (prefix or not known) and len(word) >= MIN_PREFIX:
            if ":" in word:
                terms.update((tag, PREFIX_WEIGHT) for tag in _starting(self._tags, word))
            else:
                for surface in _starting(self._surfaces, _sigma(word)):
                    terms[self._surface_stem[surface]] = PREFIX_WEIGHT
        if known:
            terms[own] = 1.0
        return terms

    @staticmethod
    def _name_tier(name: str, phrase: str, word_count: int) -> int:
        """3: the query is the name; 2: it starts the name; 1: a phrase in the name; else 0."""
        if phrase == name:
            return 3
        if len(phrase) >= MIN_PREFIX and name.startswith(phrase):
            return 2
        if word_count >= 2 and f" {phrase}" in f" {name}":
            return 1
        return 0
