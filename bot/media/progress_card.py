"""The /progress picture: a phone-sized PNG of a learner's streak, practice and mastery.

One fixed layout, 1080 × 1350 px (Telegram shows a 4:5 portrait photo full width on a phone):
a title and the streak; a GitHub-style calendar of the last `weeks` weeks (a column per week,
Monday at the top, today outlined); one bar per competence area; one bar per course. Lists that
do not fit end with a "+N" row; `describe_progress` always names everything.

It is drawn with matplotlib's object-oriented API (`Figure` + `FigureCanvasAgg`) on one axes
measured in pixels, never through pyplot, so no global state is touched and the function can run
in `asyncio.to_thread`; a module lock serialises the drawing itself, which costs little because
the GIL would serialise it anyway. Text is at least 28 px, dark on white, in DejaVu Sans (Greek,
accents, Cyrillic); colours are from the Okabe–Ito palette (blue and vermillion), which stays
distinct for every kind of colour blindness, and the calendar uses filled versus empty cells so
it can be read without colour at all. Every word comes from the caller, already translated.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from bot.media import BOLD, REGULAR, drawable_text, font_path

if TYPE_CHECKING:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.font_manager import FontProperties

__all__ = ["HEIGHT_PX", "WIDTH_PX", "ProgressPicture", "describe_progress", "render_progress_png"]

WIDTH_PX = 1080
HEIGHT_PX = 1350
DPI = 100
MAX_AREAS = 12

DEFAULT_LABELS: Mapping[str, str] = {
    "practice": "Practice",
    "areas": "Competence areas",
    "courses": "Courses",
    "streak": "Streak: {n}",
    "weekdays": "M,T,W,T,F,S,S",
    "none": "Nothing yet",
    "percent": "{n}%",
    "practice_summary": "{n}/{total}",
}

_INK = "#111111"
_MUTED = "#4A4F57"
_EMPTY = "#E4E7EB"
_EMPTY_EDGE = "#B9C0CA"
_AREA = "#0072B2"  # Okabe–Ito blue, 5.1:1 on white
_COURSE = "#D55E00"  # Okabe–Ito vermillion, 4.0:1 on white
_MARGIN = 56
_LOCK = threading.Lock()


@dataclass(frozen=True)
class ProgressPicture:
    """What the picture shows; every string is already translated by the caller."""

    title: str  # e.g. "Your progress"
    practice_days: frozenset[date]  # the learner's streak days
    today: date
    areas: list[tuple[str, float]]  # (competence area label, mastered share 0..1), up to ~12
    courses: list[tuple[str, float]]  # (course title, completion share 0..1)
    # "practice", "areas", "courses", "streak" ("Streak: {n}"), "weekdays" (seven comma-separated
    # short names from Monday), "none"; optional "percent" ("{n}%", "{n} %") and
    # "practice_summary" ("{n} days of the last {total}") for the text. Missing keys use English.
    labels: Mapping[str, str]
    streak: int
    weeks: int = 12


# --- the text alternative ----------------------------------------------------------------------


def describe_progress(picture: ProgressPicture) -> str:
    """The same figures as plain text, for screen readers and as the photo's caption."""
    days, total = _practice_count(picture)
    summary = _label(picture, "practice_summary").replace("{n}", str(days))
    lines = [
        _clean_line(picture.title),
        _streak_text(picture),
        f"{_label(picture, 'practice')}: " + summary.replace("{total}", str(total)),
        _list_text(picture, "areas", picture.areas),
        _list_text(picture, "courses", picture.courses),
    ]
    return "\n".join(line for line in lines if line)


def _list_text(picture: ProgressPicture, key: str, items: list[tuple[str, float]]) -> str:
    if not items:
        return f"{_label(picture, key)}: {_label(picture, 'none')}"
    parts = [f"{_clean_line(name)} {_percent(picture, share)}" for name, share in items]
    return f"{_label(picture, key)}: " + "; ".join(parts)


# --- the picture -------------------------------------------------------------------------------


def render_progress_png(picture: ProgressPicture) -> bytes:
    """The progress card as a 1080 × 1350 PNG (see the module docstring for the layout)."""
    # matplotlib (and numpy) are imported on the first drawing, not with the bot: half a second
    # of every start and about 40 MB of every process that never draws (the planner, the CLI).
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with _LOCK:
        fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, facecolor="white")
        canvas = FigureCanvasAgg(fig)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, WIDTH_PX)
        ax.set_ylim(HEIGHT_PX, 0)  # y grows downwards, like a page
        ax.set_axis_off()
        _Card(picture, ax, canvas).draw()
        out = io.BytesIO()
        canvas.print_png(out, metadata={"Software": None})
        return out.getvalue()


class _Card:
    """Draws one picture onto a pixel-measured axes, top to bottom."""

    def __init__(self, picture: ProgressPicture, ax, canvas: FigureCanvasAgg) -> None:
        self.p = picture
        self.ax = ax
        self.renderer = canvas.get_renderer()
        self.regular = str(font_path(REGULAR))
        self.bold = str(font_path(BOLD))

    def font(self, px: float, bold: bool = False) -> FontProperties:
        from matplotlib.font_manager import FontProperties

        return FontProperties(fname=self.bold if bold else self.regular, size=px * 72 / DPI)

    def box(self, xy: tuple[float, float], width: float, height: float, **style) -> None:
        """A rectangle in pixels (`style`: matplotlib patch properties)."""
        from matplotlib.patches import Rectangle

        self.ax.add_patch(Rectangle(xy, width, height, **style))

    def text(self, x: float, y: float, value: str, prop: FontProperties, **kw) -> None:
        self.ax.text(
            x, y, value, fontproperties=prop, va="center", parse_math=False, usetex=False, **kw
        )

    def width(self, value: str, prop: FontProperties) -> float:
        w, _, _ = self.renderer.get_text_width_height_descent(value, prop, ismath=False)
        return w

    def fit(self, value: str, prop: FontProperties, max_px: float) -> str:
        """`value`, cut and ended with "…" if it is wider than `max_px`."""
        if self.width(value, prop) <= max_px:
            return value
        lo, hi = 0, len(value)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.width(value[:mid].rstrip() + "…", prop) <= max_px:
                lo = mid
            else:
                hi = mid - 1
        return value[:lo].rstrip() + "…"

    def draw(self) -> None:
        inner = WIDTH_PX - 2 * _MARGIN
        title = self.font(46, bold=True)
        self.text(_MARGIN, 62, self.fit(_clean_line(self.p.title), title, inner), title, color=_INK)
        streak = self.font(34, bold=True)
        self.text(_MARGIN, 122, self.fit(_streak_text(self.p), streak, inner), streak, color=_AREA)
        y = self.calendar(top=178)
        y = self.bars(top=y + 34, key="areas", items=self.p.areas, color=_AREA, reserve=True)
        self.bars(top=y + 16, key="courses", items=self.p.courses, color=_COURSE, reserve=False)

    def heading(self, y: float, key: str) -> None:
        prop = self.font(32, bold=True)
        text = self.fit(_label(self.p, key), prop, WIDTH_PX - 2 * _MARGIN)
        self.text(_MARGIN, y, text, prop, color=_INK)

    def calendar(self, top: float) -> float:
        """The heat-map; returns the y just below it."""
        self.heading(top + 18, "practice")
        weeks = _weeks(self.p)
        start = _calendar_start(self.p.today, weeks)
        prop = self.font(28)
        names = _weekday_names(self.p)
        label_w = max(self.width(n, prop) for n in names) + 18
        grid_left = _MARGIN + label_w
        pitch = min(46.0, (WIDTH_PX - _MARGIN - grid_left) / weeks)
        gap = max(2.0, pitch * 0.13)
        grid_top = top + 52
        for row, name in enumerate(names):
            if pitch >= 36 or row % 2 == 0:  # small cells: Mon, Wed, Fri, Sun only, like GitHub
                self.text(_MARGIN, grid_top + row * pitch + pitch / 2, name, prop, color=_MUTED)
        self.count(grid_left + weeks * pitch + 40, grid_top, pitch)
        for col in range(weeks):
            for row in range(7):
                day = start + timedelta(days=col * 7 + row)
                if day > self.p.today:
                    continue
                x, y = grid_left + col * pitch, grid_top + row * pitch
                done = day in self.p.practice_days
                self.box(
                    (x + gap / 2, y + gap / 2),
                    pitch - gap,
                    pitch - gap,
                    facecolor=_AREA if done else _EMPTY,
                    edgecolor=_AREA if done else _EMPTY_EDGE,
                    linewidth=1.0,
                )
                if day == self.p.today:
                    self.box(
                        (x - 1, y - 1),
                        pitch + 2,
                        pitch + 2,
                        facecolor="none",
                        edgecolor=_INK,
                        linewidth=3.5 * 72 / DPI,
                    )
        return grid_top + 7 * pitch

    def count(self, left: float, grid_top: float, pitch: float) -> None:
        """The number of practice days, large, beside the calendar when there is room."""
        if WIDTH_PX - _MARGIN - left < 150:
            return
        done, total = _practice_count(self.p)
        big = self.font(96, bold=True)
        self.text(left, grid_top + 2.2 * pitch, str(done), big, color=_AREA)
        small = self.font(34)
        self.text(left, grid_top + 4.2 * pitch, f"/ {total}", small, color=_MUTED)

    def bars(
        self, top: float, key: str, items: list[tuple[str, float]], color: str, reserve: bool
    ) -> float:
        """A heading and one bar per item; returns the y just below the last row.

        The areas leave room for at least one course row below them (`reserve`); rows are 40 to
        64 px apart depending on how many there are, and what still does not fit becomes "+N".
        """
        self.heading(top + 18, key)
        first = top + 52
        bottom = HEIGHT_PX - 28
        min_pitch, max_pitch = 42.0, 64.0
        courses_need = (52 + 16 + min_pitch * max(1, min(len(self.p.courses), 3))) if reserve else 0
        room = bottom - courses_need - first
        capacity = max(1, int(room // min_pitch))
        if key == "areas":
            capacity = min(capacity, MAX_AREAS)
        rows = max(1, len(items))
        shown = items if rows <= capacity else items[: capacity - 1]
        hidden = len(items) - len(shown)
        n_rows = len(shown) + (1 if hidden else 0) or 1
        pitch = max(min_pitch, min(max_pitch, room / n_rows))
        prop = self.font(28)
        value_prop = self.font(28, bold=True)
        if not items:
            self.text(_MARGIN, first + pitch / 2, _label(self.p, "none"), prop, color=_MUTED)
            return first + pitch
        value_w = self.width(_percent(self.p, 1.0), value_prop) + 8
        stacked = room / n_rows >= 96  # few rows: each label gets a line of its own
        if stacked:
            pitch = min(112.0, room / n_rows)
            label_w = WIDTH_PX - 2 * _MARGIN
            track_left = _MARGIN
        else:
            label_w = 430.0
            track_left = _MARGIN + label_w + 16
        track_right = WIDTH_PX - _MARGIN - value_w - 12
        bar_h = 30.0 if stacked else min(28.0, pitch * 0.55)
        for i, (name, share) in enumerate(shown):
            row_top = first + i * pitch
            cy = row_top + (pitch * 0.62 if stacked else pitch / 2)
            label_y = row_top + pitch * 0.22 if stacked else cy
            label = self.fit(_clean_line(name) or "—", prop, label_w)
            self.text(_MARGIN, label_y, label, prop, color=_INK)
            self.box(
                (track_left, cy - bar_h / 2),
                track_right - track_left,
                bar_h,
                facecolor=_EMPTY,
                edgecolor=_EMPTY_EDGE,
                linewidth=1.0,
            )
            fill = (track_right - track_left) * _share(share)
            if fill > 0:
                self.box((track_left, cy - bar_h / 2), fill, bar_h, facecolor=color, lw=0)
            self.text(
                WIDTH_PX - _MARGIN,
                cy,
                _percent(self.p, share),
                value_prop,
                color=_INK,
                ha="right",
            )
        if hidden:
            cy = first + len(shown) * pitch + pitch / 2
            self.text(_MARGIN, cy, f"+{hidden}", prop, color=_MUTED)
        return first + n_rows * pitch


# --- shared helpers ----------------------------------------------------------------------------


def _label(picture: ProgressPicture, key: str) -> str:
    value = picture.labels.get(key)
    return value if isinstance(value, str) and value.strip() else DEFAULT_LABELS[key]


def _clean_line(value: str) -> str:
    """Drawable text (no emoji the font lacks, no invisible controls) on one line."""
    return drawable_text(value)


def _streak_text(picture: ProgressPicture) -> str:
    return _clean_line(_label(picture, "streak").replace("{n}", str(max(0, picture.streak))))


def _share(value: float) -> float:
    """`value` clamped to 0..1; not-a-number counts as nothing."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if math.isnan(value) else min(1.0, max(0.0, value))


def _percent(picture: ProgressPicture, share: float) -> str:
    """Whole per cent, rounded down so that nothing unfinished reads 100."""
    n = math.floor(_share(share) * 100 + 1e-9)
    return _label(picture, "percent").replace("{n}", str(n))


def _weeks(picture: ProgressPicture) -> int:
    return min(53, max(1, int(picture.weeks)))


def _calendar_start(today: date, weeks: int) -> date:
    """The Monday that opens the first column; the last column is the week of `today`."""
    return today - timedelta(days=today.weekday(), weeks=weeks - 1)


def _practice_count(picture: ProgressPicture) -> tuple[int, int]:
    """Practice days shown on the calendar, and how many days it shows (up to today)."""
    start = _calendar_start(picture.today, _weeks(picture))
    total = (picture.today - start).days + 1
    done = sum(1 for d in picture.practice_days if start <= d <= picture.today)
    return done, total


def _weekday_names(picture: ProgressPicture) -> list[str]:
    names = [_clean_line(n) for n in _label(picture, "weekdays").split(",")]
    if len(names) != 7 or not all(names):
        names = DEFAULT_LABELS["weekdays"].split(",")
    return names
