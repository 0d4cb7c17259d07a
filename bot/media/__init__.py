"""Pictures and documents the tutor sends: progress cards, certificates and Open Badges.

Everything in this package is a pure function of its arguments (no database, no Telegram), so the
bot can call it from `asyncio.to_thread` and the tests can check it byte by byte. The one shared
concern lives here: both renderers draw with DejaVu Sans, the font matplotlib ships (so no system
font is needed and Greek, Cyrillic, accented Latin, Hebrew and basic Arabic letters all have
glyphs), and both must drop what that font cannot draw instead of printing empty boxes.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path

__all__ = ["drawable_text", "font_path"]

REGULAR = "DejaVuSans.ttf"
BOLD = "DejaVuSans-Bold.ttf"
MONO_BOLD = "DejaVuSansMono-Bold.ttf"

# Pictographs are dropped even where DejaVu has a monochrome glyph (it has 😀 and ☀ but not 🎨):
# half the emoji of a name turning into outlines and the other half vanishing looks broken.
_PICTOGRAPHIC_BLOCKS = ((0x2600, 0x27BF), (0x2B00, 0x2BFF), (0x1F000, 0x1FAFF))


def font_path(file_name: str = REGULAR) -> Path:
    """Where matplotlib keeps one of its bundled DejaVu TTF files."""
    import matplotlib  # imported here so that `bot.media.badge` stays cheap to import

    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / file_name
    if not path.is_file():
        raise FileNotFoundError(f"matplotlib does not ship {file_name} at {path}")
    return path


@lru_cache(maxsize=8)
def _codepoints(file_names: tuple[str, ...]) -> frozenset[int]:
    """The code points that every one of `file_names` has a glyph for."""
    from fontTools.ttLib import TTFont  # a dependency of both matplotlib and fpdf2

    covered: frozenset[int] | None = None
    for name in file_names:
        with TTFont(font_path(name), lazy=True) as font:
            points = frozenset(font["cmap"].getBestCmap())
        covered = points if covered is None else covered & points
    return covered or frozenset()


def _pictographic(ch: str) -> bool:
    cp = ord(ch)
    if 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF:  # variation selectors
        return True
    return any(lo <= cp <= hi for lo, hi in _PICTOGRAPHIC_BLOCKS) and unicodedata.category(ch) in {
        "So",
        "Sk",
        "Sm",
    }


def drawable_text(text: str, fonts: tuple[str, ...] = (REGULAR, BOLD), max_marks: int = 3) -> str:
    """`text` made safe to draw with `fonts`, whitespace collapsed to single spaces.

    NFKC folds look-alike styles ("𝓐𝓷𝓷𝓪", full-width letters) to plain letters first. Control and
    format characters (zero-width spaces and joiners, bidi overrides and isolates, soft hyphens,
    tags) are removed, since they are invisible and can make text display as something else.
    Emoji and any other character the fonts have no glyph for become a space, so "Anna🎨Maria"
    reads "Anna Maria". Combining marks are kept (at most `max_marks` in a row, which stops
    "Zalgo" stacks) only when they follow a letter that is kept.
    """
    covered = _codepoints(tuple(fonts))
    out: list[str] = []
    marks = 0
    base_kept = False
    for ch in unicodedata.normalize("NFKC", text):
        category = unicodedata.category(ch)
        if ch.isspace() or category in {"Zs", "Zl", "Zp"}:
            out.append(" ")
            base_kept, marks = False, 0
        elif category[0] == "C" or _invisible_letter(ch):
            continue  # Cc, Cf, Cs, Co, Cn: controls, format characters, surrogates, unassigned
        elif category[0] == "M":
            if base_kept and marks < max_marks and ord(ch) in covered and not _pictographic(ch):
                out.append(ch)
                marks += 1
        elif ord(ch) not in covered or _pictographic(ch):
            out.append(" ")
            base_kept, marks = False, 0
        else:
            out.append(ch)
            base_kept, marks = True, 0
    return " ".join("".join(out).split())


def _invisible_letter(ch: str) -> bool:
    """Letters that draw as nothing (Hangul fillers, blank Braille), a favourite of fake names."""
    return ch in "\u115f\u1160\u3164\uffa0\u2800"
