"""The Babel workflow holds: catalogs match the code, interface catalogs are complete, every
message renders in every language, lesson strings fall back to English one by one."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from bot.i18n import LANGUAGES, Translator, compile_catalogs
from bot.tutor.events import Command, Who

ROOT = Path(__file__).parent.parent
LOCALES = ROOT / "locales"
SHIPPED = [lang for lang in LANGUAGES if lang != "en"]
PLACEHOLDER = re.compile(r"\{(\w*)\}")


def load(path: Path) -> Catalog:
    with path.open("rb") as f:
        return read_po(f)


def ids(catalog: Catalog) -> set[tuple[str | None, str]]:
    return {(m.context, m.id if isinstance(m.id, str) else m.id[0]) for m in catalog if m.id}


def extract(domain: str, tmp_path: Path) -> Catalog:
    """Run the real `pybabel extract` the way `make i18n` does."""
    out = tmp_path / f"{domain}.pot"
    keywords = ["-k", "_", "-k", "N_", "-k", "ngettext:1,2"] if domain == "messages" else []
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            f"locales/babel-{domain}.cfg",
            *keywords,
            "--no-wrap",
            "-o",
            str(out),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return load(out)


@pytest.mark.parametrize("domain", ["messages", "lessons"])
def test_catalogs_are_not_stale(domain, tmp_path):
    """The equivalent of `pybabel update --check`: the template and every catalog hold exactly
    the strings the code and the content have now (run `make i18n` when this fails)."""
    fresh = ids(extract(domain, tmp_path))
    assert ids(load(LOCALES / f"{domain}.pot")) == fresh
    for lang in SHIPPED:
        catalog = load(LOCALES / lang / "LC_MESSAGES" / f"{domain}.po")
        assert ids(catalog) == fresh, lang


def untranslated(catalog: Catalog) -> list[str]:
    bad = []
    for m in catalog:
        if not m.id:
            continue
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        if "fuzzy" in m.flags or not all(strings):
            bad.append(m.id if isinstance(m.id, str) else m.id[0])
    return bad


@pytest.mark.parametrize("lang", SHIPPED)
def test_interface_catalogs_are_complete(lang):
    catalog = load(LOCALES / lang / "LC_MESSAGES" / "messages.po")
    assert untranslated(catalog) == []


def placeholder_problems(catalog: Catalog) -> list[str]:
    """Entries whose translation would break `.format()` with the English placeholders."""
    problems = []
    for m in catalog:
        if not m.id or "fuzzy" in m.flags:  # fuzzy entries are never shown
            continue
        msgids = m.id if isinstance(m.id, tuple) else (m.id,)
        names = set(PLACEHOLDER.findall(msgids[0]))
        sample = {
            name: 7 if name in ("n", "total", "done", "right", "best") else "X" for name in names
        }
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        for text in strings:
            if not text:
                continue
            try:
                text.format(**sample)
            except (KeyError, IndexError, ValueError) as exc:
                problems.append(f"{msgids[0]!r}: {exc!r}")
            if set(PLACEHOLDER.findall(text)) - names:
                problems.append(f"{msgids[0]!r}: unknown placeholder")
    return problems


@pytest.mark.parametrize("lang", SHIPPED)
@pytest.mark.parametrize("domain", ["messages", "lessons"])
def test_every_message_renders_in_every_language(lang, domain):
    assert placeholder_problems(load(LOCALES / lang / "LC_MESSAGES" / f"{domain}.po")) == []


def test_a_broken_placeholder_is_caught():
    catalog = Catalog(locale="it")
    catalog.add("Streak: {n} days", "Serie: {numero} giorni")
    catalog.add("Hello {name}", "Ciao {name")
    problems = placeholder_problems(catalog)
    assert any("Streak" in p for p in problems) and any("Hello" in p for p in problems)


def test_rendering_through_the_translator_in_each_language():
    template = load(LOCALES / "messages.pot")
    for lang in LANGUAGES:
        t = Translator(lang)
        for m in template:
            if not m.id:
                continue
            if isinstance(m.id, tuple):
                for n in (1, 2, 5, 21):
                    t.ngettext(m.id[0], m.id[1], n).format(n=n)
            else:
                names = set(PLACEHOLDER.findall(m.id))
                t.gettext(m.id).format(**{name: 3 for name in names})


WARM_CHECK = """
import json
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from babel import localedata

from bot.i18n import LANGUAGES, Translator, warm

real, loads = localedata.load, []
localedata.load = lambda name, *args: loads.append(str(name)) or real(name, *args)
warm()
during_warm, loads[:] = sorted(set(loads)), []
for lang in LANGUAGES:
    t = Translator(lang)
    t.percent(0.9)
    t.number(2.5)
    t.date(date(2026, 11, 26))
    t.datetime(datetime(2026, 11, 26, 9, tzinfo=UTC), ZoneInfo("Europe/Athens"))
print(json.dumps({"warm": during_warm, "after": loads}))
"""


def test_warm_leaves_no_locale_data_for_an_update_to_load():
    """Babel reads a locale's data on the first formatting call in that language (4 to 9 ms on
    the event loop); `warm`, run at start-up, reads it for every language. In a fresh
    interpreter, since Babel keeps what it read for the whole process."""
    done = subprocess.run(
        [sys.executable, "-c", WARM_CHECK], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loads = json.loads(done.stdout)
    assert set(loads["warm"]) >= set(LANGUAGES)
    assert loads["after"] == []


def test_compiled_catalogs_are_built_from_po(tmp_path):
    target = tmp_path / "locales"
    (target / "it" / "LC_MESSAGES").mkdir(parents=True)
    po = target / "it" / "LC_MESSAGES" / "messages.po"
    po.write_bytes((LOCALES / "it" / "LC_MESSAGES" / "messages.po").read_bytes())
    assert compile_catalogs(target) == [po.with_suffix(".mo")]
    assert compile_catalogs(target) == []  # up to date: nothing rebuilt


def test_lesson_strings_fall_back_to_english_one_by_one():
    t = Translator("it")
    assert t.content("no-such-item", "An English sentence.") == "An English sentence."
    translated = t.content(
        "mooc-art", "MOOC-ART: digital skills for the cultural and creative sector"
    )
    assert translated and "MOOC-ART" in translated


async def test_unshipped_telegram_language_falls_back_to_english_with_a_choice(tutor):
    actions = await tutor.handle(Who("tg:5", chat_id=5, language_code="pt-BR"), Command("start"))
    text = "\n".join(getattr(a, "text", "") for a in actions)
    assert "I don't speak your Telegram language yet" in text
    assert any(
        b.data == "lang:it" for a in actions for row in getattr(a, "buttons", ()) for b in row
    )


async def test_a_shipped_telegram_language_is_proposed(tutor):
    actions = await tutor.handle(Who("tg:6", chat_id=6, language_code="it-IT"), Command("start"))
    text = "\n".join(getattr(a, "text", "") for a in actions)
    assert Translator("it").gettext("Which language would you like?") in text
    assert "Which language would you like?" not in text
