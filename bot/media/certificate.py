"""Course certificates as PDF, and the verification codes printed on them.

A certificate is one A4 landscape page drawn with fpdf2, because fpdf2 is pure Python, embeds a
subset of a Unicode TTF font (DejaVu Sans from matplotlib, so no system font is needed) and makes
small files quickly. Every visible string comes translated from the caller in `CertificateText`;
this module only lays them out, so it knows no language.

The learner's name is typed by the learner and is the only hostile input: `display_name` removes
what could spoof or break it (bidi overrides, zero-width characters, controls, emoji the font
cannot draw) and shortens it at a word. Right-to-left names are shaped and ordered only when the
optional `uharfbuzz` package is installed; without it they print in logical order, which is
legible enough and never fails.

Verification codes are 12 characters from a 31-symbol alphabet without the look-alikes 0/O and
1/I/L, grouped in fours ("K7QF-9XWA-3MTP") so they can be read out or typed from paper;
`normalise_code` accepts what people actually type (lower case, spaces, dashes anywhere).
"""

from __future__ import annotations

import importlib.util
import re
import secrets
import unicodedata
from dataclasses import dataclass

from bot.media import BOLD, MONO_BOLD, REGULAR, drawable_text, font_path

__all__ = [
    "CODE_ALPHABET",
    "CertificateText",
    "display_name",
    "new_code",
    "normalise_code",
    "render_certificate_pdf",
]

CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L: 31 symbols
CODE_LENGTH = 12
CODE_GROUP = 4
FALLBACK_NAME = "Learner"
MAX_COMPETENCE_LINES = 12

_SEPARATORS = re.compile(r"[\s\-_\u2010-\u2015\u2212\u00ad.]+")


@dataclass(frozen=True)
class CertificateText:
    """Every string on the certificate, already translated (and formatted) by the caller."""

    heading: str  # "Certificate of completion"
    awarded_to: str  # "awarded to"
    for_completing: str  # "for completing the course"
    on_date: str  # the date, already formatted (e.g. "26 November 2026")
    competences_heading: str  # "Competences covered"
    verify_line: str  # "Verify with /verify K7QF-9XWA-3MTP or restart-tutor verify ..."
    issuer: str  # "RestART Tutor · Erasmus+ project RestART"
    and_more: str = "and {n} more"  # closes a competence list that is too long; {n} is a count


# --- names -------------------------------------------------------------------------------------


def display_name(name: str, limit: int = 60) -> str:
    """A learner-given name made safe and short enough to print, never empty.

    Controls, zero-width and bidi control characters are removed (a right-to-left override,
    U+202E, can make text display as something else), characters DejaVu Sans cannot draw and
    emoji become spaces, whitespace collapses, and a name longer than `limit` is cut at the last
    word boundary in its second half and ends with "…" (the result is at most `limit`
    characters). A name with nothing printable left becomes "Learner".
    """
    if limit < 2:
        raise ValueError("limit must leave room for at least one character and the ellipsis")
    clean = drawable_text(name)
    if not clean:
        return FALLBACK_NAME
    if len(clean) <= limit:
        return clean
    cut = clean[: limit - 1]
    # Do not separate a letter from the accents that follow it.
    while cut and unicodedata.combining(clean[len(cut)]):
        cut = cut[:-1]
    space = cut.rfind(" ")
    if space >= (limit - 1) // 2:
        cut = cut[:space]
    cut = cut.rstrip(" ,.;:·-–—") or cut.rstrip()
    return (cut or FALLBACK_NAME[: limit - 1]) + "…"


# --- verification codes ------------------------------------------------------------------------


def new_code() -> str:
    """A fresh verification code such as "K7QF-9XWA-3MTP".

    12 symbols drawn with `secrets` from 31 give 31**12 ≈ 7.9e17 codes (59.5 bits): a code cannot
    be guessed, and collisions are negligible (the caller still stores codes under a unique key).
    """
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return _group(raw)


def normalise_code(raw: str) -> str | None:
    """The canonical grouped form of a typed code, or None when `raw` cannot be a code.

    Case, spaces, full-width characters and dashes (missing, extra or typographic) do not matter;
    a wrong length or any character outside the alphabet (including the look-alikes 0, O, 1, I
    and L, which are never issued) rejects the input rather than guessing.
    """
    if not isinstance(raw, str) or len(raw) > 64:
        return None
    compact = _SEPARATORS.sub("", unicodedata.normalize("NFKC", raw)).upper()
    if len(compact) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in compact):
        return None
    return _group(compact)


def _group(compact: str) -> str:
    return "-".join(compact[i : i + CODE_GROUP] for i in range(0, len(compact), CODE_GROUP))


# --- the PDF -----------------------------------------------------------------------------------

PAGE_W, PAGE_H = 297.0, 210.0  # A4 landscape, millimetres
_INK = (20, 24, 33)
_MUTED = (72, 80, 94)
_ACCENT = (0, 84, 140)  # a dark blue: prints well in grey scale and for every colour vision
_FAMILY, _MONO = "DejaVu", "DejaVuMono"


def render_certificate_pdf(
    name: str, course_title: str, competences: list[str], code: str, text: CertificateText
) -> bytes:
    """One A4 landscape page: heading, name, course, date, competences, code, issuer.

    `name` goes through `display_name`; the other strings are ours or translators', but lose
    what the font cannot draw all the same. At most 12 competence lines are printed; a longer list
    ends with `text.and_more`. `code` must be a valid verification code (see `normalise_code`).
    """
    from fpdf import FPDF  # imported here: the PNG renderer and the badge do not need it

    canonical = normalise_code(code)
    if canonical is None:
        raise ValueError(f"not a verification code: {code!r}")
    learner = display_name(name)
    course = drawable_text(course_title) or "—"

    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_margins(0, 0, 0)
    pdf.add_font(_FAMILY, "", str(font_path(REGULAR)))
    pdf.add_font(_FAMILY, "B", str(font_path(BOLD)))
    pdf.add_font(_MONO, "B", str(font_path(MONO_BOLD)))
    if importlib.util.find_spec("uharfbuzz") is not None:
        pdf.set_text_shaping(True)  # proper Arabic/Hebrew shaping and ordering when available
    pdf.set_title(drawable_text(f"{text.heading}: {learner}"))
    pdf.set_subject(course)
    pdf.set_author(drawable_text(text.issuer))
    pdf.set_creator("RestART Tutor")
    pdf.add_page()

    _border(pdf)
    left, width = 30.0, PAGE_W - 60.0

    _line(pdf, text.issuer, 22, left, width, size=11, color=_MUTED)
    _line(pdf, text.heading, 32, left, width, size=30, style="B", color=_ACCENT, min_size=18)
    _line(pdf, text.awarded_to, 50, left, width, size=14, color=_MUTED)
    _line(pdf, learner, 58, left, width, size=30, style="B", min_size=14, clean=False)
    _line(pdf, text.for_completing, 75, left, width, size=14, color=_MUTED)
    y = _wrapped(pdf, course, 83, left, width, size=20, min_size=13, max_lines=2)
    _line(pdf, text.on_date, y + 2, left, width, size=12, color=_MUTED)

    _competences(pdf, competences, text, top=y + 13, left=left + 10, width=width - 20)

    # The code, large and in a monospace face so that every character is unmistakable.
    pdf.set_draw_color(*_ACCENT)
    pdf.set_line_width(0.5)
    box_w, box_h, box_y = 92.0, 14.0, 166.0
    pdf.rect((PAGE_W - box_w) / 2, box_y, box_w, box_h)
    pdf.set_font(_MONO, "B", 22)
    pdf.set_text_color(*_INK)
    pdf.set_xy((PAGE_W - box_w) / 2, box_y)
    pdf.cell(box_w, box_h, canonical, align="C")
    _line(pdf, text.verify_line, box_y + box_h + 3, left, width, size=10, color=_MUTED, min_size=7)

    return bytes(pdf.output())


def _border(pdf) -> None:
    """A thick outer frame, a hairline inside it and small corner squares."""
    pdf.set_draw_color(*_ACCENT)
    pdf.set_line_width(1.6)
    pdf.rect(10, 10, PAGE_W - 20, PAGE_H - 20)
    pdf.set_line_width(0.3)
    pdf.rect(14, 14, PAGE_W - 28, PAGE_H - 28)
    pdf.set_fill_color(*_ACCENT)
    for x, y in ((12, 12), (PAGE_W - 16, 12), (12, PAGE_H - 16), (PAGE_W - 16, PAGE_H - 16)):
        pdf.rect(x, y, 4, 4, style="F")


def _line(
    pdf,
    value: str,
    y: float,
    left: float,
    width: float,
    *,
    size: float,
    style: str = "",
    color: tuple[int, int, int] = _INK,
    min_size: float | None = None,
    clean: bool = True,
) -> None:
    """One centred line, shrunk down to `min_size` and then cut with "…" until it fits."""
    value = drawable_text(value) if clean else value
    if not value:
        return
    band = size * 0.3528 * 1.2  # points to millimetres; a shrunk line stays centred in its band
    pdf.set_font(_FAMILY, style, size)
    floor = min_size or size
    while size > floor and pdf.get_string_width(value) > width:
        size = max(floor, size - 1)
        pdf.set_font(_FAMILY, style, size)
    value = _fit(pdf, value, width)
    pdf.set_text_color(*color)
    pdf.set_xy(left, y)
    pdf.cell(width, band, value, align="C")


def _wrapped(
    pdf,
    value: str,
    y: float,
    left: float,
    width: float,
    *,
    size: float,
    min_size: float,
    max_lines: int,
) -> float:
    """A bold centred block over at most `max_lines` lines; returns the y below it."""
    style = "B"
    pdf.set_font(_FAMILY, style, size)
    while size > min_size and pdf.get_string_width(value) > width:
        size -= 1
        pdf.set_font(_FAMILY, style, size)
    lines = _split_lines(pdf, value, width, max_lines)
    height = size * 0.3528 * 1.25
    pdf.set_text_color(*_INK)
    for i, text_line in enumerate(lines):
        pdf.set_xy(left, y + i * height)
        pdf.cell(width, height, text_line, align="C")
    return y + len(lines) * height


def _split_lines(pdf, value: str, width: float, max_lines: int) -> list[str]:
    """Greedy word wrap with the current font; the last line is cut with "…" if need be."""
    lines: list[str] = []
    words = value.split(" ")
    current = ""
    for i, word in enumerate(words):
        candidate = f"{current} {word}".strip()
        if pdf.get_string_width(candidate) <= width or not current:
            current = candidate
            continue
        lines.append(current)
        current = word
        if len(lines) == max_lines - 1:
            current = " ".join(words[i:])
            break
    lines.append(current)
    return [_fit(pdf, line, width) for line in lines]


def _fit(pdf, value: str, width: float) -> str:
    """`value`, cut and ended with "…" if it is wider than `width` in the current font."""
    if pdf.get_string_width(value) <= width:
        return value
    lo, hi = 0, len(value)
    while lo < hi:  # the longest prefix that fits together with the ellipsis
        mid = (lo + hi + 1) // 2
        if pdf.get_string_width(value[:mid].rstrip() + "…") <= width:
            lo = mid
        else:
            hi = mid - 1
    return value[:lo].rstrip() + "…"


def _competences(
    pdf, competences: list[str], text: CertificateText, *, top: float, left: float, width: float
) -> None:
    """The heading and up to 12 lines, in two columns when there are more than six."""
    items = [c for c in (drawable_text(c) for c in competences) if c]
    if not items:
        return
    more = ""
    if len(items) > MAX_COMPETENCE_LINES:
        hidden = len(items) - (MAX_COMPETENCE_LINES - 1)
        items = items[: MAX_COMPETENCE_LINES - 1]
        more = drawable_text(text.and_more.replace("{n}", str(hidden))) or f"+{hidden}"
    labels = [f"• {item}" for item in items] + ([more] if more else [])
    _line(pdf, text.competences_heading, top, left, width, size=12, style="B", color=_ACCENT)
    columns = 1 if len(labels) <= 6 else 2
    per_column = -(-len(labels) // columns)
    gap = 8.0
    col_w = (width - gap * (columns - 1)) / columns
    size = 10.5 if columns == 2 or len(labels) > 4 else 11.5
    line_h = 5.2
    pdf.set_font(_FAMILY, "", size)
    pdf.set_text_color(*_INK)
    for i, label in enumerate(labels):
        col, row = divmod(i, per_column)
        if columns == 1:  # a single column is centred under the heading
            x, cell_w, align = left, width, "C"
        else:
            x, cell_w, align = left + col * (col_w + gap), col_w, "L"
        pdf.set_xy(x, top + 7 + row * line_h)
        pdf.cell(cell_w, line_h, _fit(pdf, label, cell_w), align=align)
