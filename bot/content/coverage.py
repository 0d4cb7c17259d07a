"""Translation coverage of the course content, per course and language, for `lessons stats`.

Read from the `.po` files (not the compiled catalogs) so that fuzzy entries, which a learner
never sees, do not count as translated.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.pofile import read_po

from bot.content.catalog import Catalog
from bot.content.localize import strings, translate_course


def translated_keys(po_path: Path) -> set[tuple[str | None, str]]:
    if not po_path.is_file():
        return set()
    with po_path.open("rb") as f:
        catalog = read_po(f)
    return {(m.context, m.id) for m in catalog if m.id and m.string and "fuzzy" not in m.flags}


def coverage(catalog: Catalog, locales_dir: Path, languages: list[str]) -> dict[str, dict]:
    result: dict[str, dict[str, float]] = {}
    done = {
        lang: translated_keys(locales_dir / lang / "LC_MESSAGES" / "lessons.po")
        for lang in languages
    }
    for course in catalog.courses.values():
        keys = {(ctx, text) for ctx, text in strings(lambda tr, c=course: translate_course(c, tr))}
        result[course.id] = {
            lang: round(len(keys & done[lang]) / len(keys), 4) if keys else 1.0
            for lang in languages
        }
    return result
