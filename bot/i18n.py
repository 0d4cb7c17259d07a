"""Translations: gettext catalogs under `locales/`, managed with Babel, compiled on start-up.

Every string a person reads goes through a `Translator` for the learner's language. Catalogs are
compiled from `.po` to `.mo` when the `.mo` is missing or older (so no binary is committed and a
fresh clone just works). Format after translating: `_("{n} lessons").format(n=n)`.
"""

from __future__ import annotations

import gettext
from datetime import UTC, date, datetime, tzinfo
from functools import cache
from pathlib import Path

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import Translations

DEFAULT_LANGUAGE = "en"
LANGUAGES: dict[str, str] = {"en": "English", "it": "Italiano", "es": "Español", "el": "Ελληνικά"}
DOMAINS = ("messages", "lessons")
LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"


def N_(message: str) -> str:
    """Mark a string for extraction; it is translated where it is shown."""
    return message


def shipped(code: str | None) -> str | None:
    """The shipped language for a Telegram language code ('it-IT' → 'it'), else None."""
    if not code:
        return None
    base = code.replace("_", "-").split("-")[0].lower()
    return base if base in LANGUAGES else None


def compile_catalogs(locales_dir: Path = LOCALES_DIR) -> list[Path]:
    """Compile every `.po` whose `.mo` is missing or older; return the files written."""
    written = []
    for po_path in sorted(locales_dir.glob("*/LC_MESSAGES/*.po")):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as f:
            catalog = read_po(f, locale=po_path.parent.parent.name)
        with mo_path.open("wb") as f:
            write_mo(f, catalog, use_fuzzy=False)
        written.append(mo_path)
    return written


_locale = cache(Locale.parse)
"""Babel's Locale of a shipped language; parsing it anew cost a tenth of each update's work."""


@cache
def _translations(language: str, locales_dir: Path) -> gettext.NullTranslations:
    """The interface and lesson catalogs of one language, merged (contexts keep them apart)."""
    merged: Translations | None = None
    if language != DEFAULT_LANGUAGE:
        compile_catalogs(locales_dir)  # a fresh clone has only the .po files
        for domain in DOMAINS:
            found = Translations.load(str(locales_dir), [language], domain)
            if not isinstance(found, Translations):
                continue
            if merged is None:
                merged = found
            else:
                merged.merge(found)
    return merged or gettext.NullTranslations()


class Translator:
    """Gettext for one language, plus Babel formatting in that language's conventions."""

    def __init__(self, language: str | None, locales_dir: Path = LOCALES_DIR):
        self.language = shipped(language) or DEFAULT_LANGUAGE
        self.locale = _locale(self.language)
        self._t = _translations(self.language, locales_dir)

    def gettext(self, message: str) -> str:
        return self._t.gettext(message)

    _ = gettext

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self._t.ngettext(singular, plural, n)

    def content(self, context: str, text: str) -> str:
        """A lesson string, translated with its item id as context; English when missing."""
        return self._t.pgettext(context, text) or text

    def date(self, value: date) -> str:
        return format_date(value, format="medium", locale=self.locale)

    def datetime(self, value: datetime, zone: tzinfo) -> str:
        return format_datetime(value, format="medium", tzinfo=zone, locale=self.locale)

    def number(self, value: float) -> str:
        return format_decimal(value, locale=self.locale)

    def percent(self, value: float) -> str:
        return format_percent(value, locale=self.locale)


def warm(locales_dir: Path = LOCALES_DIR) -> None:
    """Load each language's catalogs and Babel's data for it now, at start-up. Babel reads a
    locale's data on its first formatting call: left lazy, the first percent or date in each
    language cost 4 to 9 ms, on the event loop, in the middle of some learner's update (the
    first course finished in a process, say), and every update behind it waited."""
    for language in LANGUAGES:
        t = Translator(language, locales_dir)
        t.percent(0.5)
        t.number(0.5)
        t.date(date(2000, 1, 1))
        t.datetime(datetime(2000, 1, 1, tzinfo=UTC), UTC)
