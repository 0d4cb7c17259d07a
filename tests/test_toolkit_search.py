"""Searching the RestART-kit: normalising, stemming and ranking, on the real toolkit content."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.content import Catalog, load_catalog
from bot.trainers.toolkit_search import MAX_QUERY_CHARS, Hit, ToolkitIndex, normalise, stem

LESSONS = Path(__file__).parent.parent / "lessons"
CREATIVE_COMMONS = {"cc-licences", "cc-chooser"}


@pytest.fixture(scope="module")
def kit() -> Catalog:
    return load_catalog(LESSONS)


@pytest.fixture(scope="module")
def index(kit: Catalog) -> ToolkitIndex:
    return ToolkitIndex.from_catalog(kit)


def ids(hits: list[Hit]) -> list[str]:
    return [h.resource.id for h in hits]


def topics_of(kit: Catalog, resource_id: str) -> list[str]:
    return kit.resources[resource_id].topics


# --- normalise and stem -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Licences", "licences"),
        ("città", "citta"),
        ("ψηφιακές", "ψηφιακες"),
        ("ΨΗΦΙΑΚΕΣ", "ψηφιακες"),
        ("Fact-checking!", "fact checking"),
        ("  Diritto d'Autore\n", "diritto d autore"),
        ("verificación", "verificacion"),
        ("Straße", "strasse"),
        ("DigComp 2.2", "digcomp 2.2"),
        ("digcomp:3.3", "digcomp 3.3"),
        ("🎭 {0}%s", "0 s"),
        ("", ""),
    ],
)
def test_normalise(text, expected):
    assert normalise(text) == expected


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Licences", "licence"),
        ("copies", "copy"),
        ("courses", "course"),
        ("checking", "check"),
        ("licenze", "licenza"),
        ("competenze", "competenza"),
        ("digitali", "digitale"),
        ("licencias", "licencia"),
        ("digitales", "digital"),
        ("vídeos", "video"),
        ("δεξιότητες", "δεξιότητα"),
        ("δεξιοτήτων", "δεξιότητα"),
        ("ψηφιακές", "ψηφιακών"),
        ("ψηφιακός", "ψηφιακή"),
        ("άδειες", "άδεια"),
    ],
)
def test_stem_folds_plurals_and_inflections(one, other):
    assert stem(one) == stem(other)


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("licences", "licenc"),
        ("copies", "copy"),
        ("licenze", "licenz"),
        ("licencias", "licenci"),
        ("δεξιότητες", "δεξιοτητ"),
        ("bots", "bots"),  # stripping would leave fewer than 4 characters
        ("game", "game"),
        ("games", "game"),  # "-es" would leave 3, so the next suffix, "-s", is tried
        ("2030", "2030"),  # words with digits are left alone
        ("covid19", "covid19"),
        ("", ""),
    ],
)
def test_stem_rule(word, expected):
    assert stem(word) == expected


# --- ranking on the real kit ------------------------------------------------------------------


def test_copyright_puts_creative_commons_first(index):
    assert set(ids(index.search("copyright"))[:2]) == CREATIVE_COMMONS


@pytest.mark.parametrize("query", ["licenze", "licenza", "licencias", "άδειες", "licences"])
def test_licences_in_every_language_find_creative_commons(index, query):
    assert set(ids(index.search(query))[:2]) == CREATIVE_COMMONS


def test_greek_digital_skills_find_digcomp_and_europass(index):
    found = ids(index.search("ψηφιακές δεξιότητες", limit=5))
    assert found[0] == "digcomp"
    assert "europass-digital-skills" in found


def test_more_query_words_matched_rank_higher(index):
    both = set(ids(index.search("ψηφιακές", limit=50))) & set(
        ids(index.search("δεξιότητες", limit=50))
    )
    ranked = ids(index.search("ψηφιακές δεξιότητες", limit=50))
    assert both, "the kit should have resources with both words"
    assert set(ranked[: len(both)]) == both
    assert len(ranked) > len(both)  # resources matching one word still come, after


def test_fact_checking_is_the_same_with_or_without_hyphen(index):
    assert ids(index.search("fact checking")) == ids(index.search("fact-checking"))


@pytest.mark.parametrize("query", ["fact checking", "fact-checking", "verificación", "επαλήθευση"])
def test_verification_queries_find_verification_tools(kit, index, query):
    top = ids(index.search(query, limit=3))
    assert len(top) == 3
    assert all("verification" in topics_of(kit, rid) for rid in top), top


def test_fact_checking_ranks_the_fact_check_explorer_first(index):
    assert ids(index.search("fact checking"))[0] == "google-fact-check-explorer"


def test_prefix_finds_the_word_being_typed(index):
    assert ids(index.search("europe"))[0] == "europeana"
    assert set(ids(index.search("copyr"))[:2]) == CREATIVE_COMMONS
    assert ids(index.search("fact che"))[0] == "google-fact-check-explorer"


def test_prefixes_need_three_characters(index):
    assert index.search("mo") == []  # not Moodle, not MOOC
    assert {"moodle", "digiculture"} <= set(ids(index.search("moo")))


def test_name_matches_rank_highest(index):
    assert ids(index.search("Moodle"))[0] == "moodle"
    assert ids(index.search("digcomp 2.2"))[0] == "digcomp"
    assert ids(index.search("open badges"))[0] == "open-badges"
    assert set(ids(index.search("creative commons"))[:2]) == CREATIVE_COMMONS
    # Every Google resource starts with the query, so all four come before anything else.
    google = ids(index.search("google"))[:4]
    assert all(rid.startswith("google") for rid in google)


def test_competence_tags_are_searchable(kit, index):
    hits = index.search("digcomp:3.3", limit=50)
    assert hits
    assert all("digcomp:3.3" in h.resource.tags for h in hits)
    assert {r.id for r in kit.toolkit.resources if "digcomp:3.3" in r.tags} == set(ids(hits))


@pytest.mark.parametrize("query", ["xyzzy", "qwertyuiop asdfghjkl", "", "   ", "!!! ???", "🎭🎨"])
def test_nonsense_finds_nothing(index, query):
    assert index.search(query) == []


def test_an_unknown_word_does_not_hide_the_known_one(index):
    assert ids(index.search("copyright xyzzy"))[:2] == ids(index.search("copyright"))[:2]


@pytest.mark.parametrize(
    "query",
    [
        "'; DROP TABLE resources; --",
        "{0}%s %(name)s {resource.__class__}",
        "<script>alert(1)</script>",
        "\x00\ud800\uffff",
        "ﷺ" * MAX_QUERY_CHARS,  # expands eighteenfold under NFKD
        "copyright " * 1000,
        "a" * 10_000,
        "σ ς ς",
    ],
)
def test_hostile_queries_do_not_raise(index, query):
    hits = index.search(query)
    assert isinstance(hits, list)
    assert len(hits) <= 10


@settings(max_examples=150, deadline=None)
@given(query=st.text(max_size=MAX_QUERY_CHARS), limit=st.integers(-2, 60))
def test_any_text_is_a_valid_query(index, query, limit):
    hits = index.search(query, limit=limit)
    assert len(hits) <= max(limit, 0)
    assert len({h.resource.id for h in hits}) == len(hits)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(s > 0 for s in scores)


def test_limit(index):
    assert len(index.search("digital", limit=3)) == 3
    assert index.search("digital", limit=0) == []


# --- stability, topics, extra text --------------------------------------------------------------


QUERIES = ["copyright", "streaming", "digital skills", "game", "ψηφιακές", "licenze", "google"]


@pytest.mark.parametrize("query", QUERIES)
def test_ties_are_broken_by_name(index, query):
    hits = index.search(query, limit=50)
    for a, b in itertools.pairwise(hits):
        if a.score == b.score:
            assert a.resource.name.casefold() <= b.resource.name.casefold()


def test_ranking_is_stable(kit, index):
    again = ToolkitIndex.from_catalog(kit)
    backwards = ToolkitIndex(reversed(kit.toolkit.resources), topics=kit.toolkit.topics)
    for query in QUERIES:
        first = ids(index.search(query, limit=50))
        assert ids(index.search(query, limit=50)) == first
        assert ids(again.search(query, limit=50)) == first
        assert ids(backwards.search(query, limit=50)) == first


def test_by_topic(kit, index):
    copyright = index.by_topic("copyright")
    assert {"cc-licences", "cc-chooser", "europeana", "tineye"} <= {r.id for r in copyright}
    assert all("copyright" in r.topics for r in copyright)
    order = list(kit.resources)
    assert [r.id for r in copyright] == sorted((r.id for r in copyright), key=order.index)
    assert index.by_topic("no-such-topic") == []
    listed = {r.id for t in kit.toolkit.topics for r in index.by_topic(t.id)}
    assert listed == set(kit.resources)


def test_topic_titles_are_searchable(kit, index):
    # "Cybersecurity" is in the title of the topic "safety", not in every resource filed there.
    without_titles = ToolkitIndex(kit.toolkit.resources)
    assert "have-i-been-pwned" not in ids(without_titles.search("cybersecurity"))
    assert "have-i-been-pwned" in ids(index.search("cybersecurity"))
    assert ids(index.search("cybersecurity"))[0] == "enisa-sme-guide"


def test_extra_text_is_indexed(kit):
    italian = {"cc-licences": ["Permettono di concedere permessi di riuso in anticipo."]}
    plain = ToolkitIndex.from_catalog(kit)
    translated = ToolkitIndex.from_catalog(kit, extra_text=lambda r: italian.get(r.id, []))
    assert plain.search("permessi") == []
    assert ids(translated.search("permessi")) == ["cc-licences"]
    assert ids(translated.search("permesso")) == ["cc-licences"]


def test_an_empty_kit_finds_nothing():
    empty = ToolkitIndex([])
    assert len(empty) == 0
    assert empty.search("copyright") == []
    assert empty.by_topic("copyright") == []
