"""The cohort chart for `/stats`: module completion and the streak distribution, one PNG."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bot.media import drawable_text, font_path

if TYPE_CHECKING:
    from bot.i18n import Translator
    from bot.trainers.stats import CohortFigures

BLUE, ORANGE = "#0072B2", "#D55E00"


def cohort_chart(figures: CohortFigures, t: Translator) -> bytes:
    from matplotlib import font_manager

    _ = t.gettext
    font = font_manager.FontProperties(fname=str(font_path()))
    modules = [(drawable_text(m)[:38], share) for _c, m, share in figures.completion]
    figure = Figure(figsize=(10.8, 13.5), dpi=100)
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, gridspec_kw={"height_ratios": [3, 1]})
    labels = [m for m, _s in modules] or [_("none yet")]
    values = [s * 100 for _m, s in modules] or [0]
    top.barh(range(len(labels)), values, color=BLUE)
    top.set_yticks(range(len(labels)), labels, fontproperties=font, fontsize=12)
    top.invert_yaxis()
    top.set_xlim(0, 100)
    top.set_title(_("Modules completed: share of learners"), fontproperties=font, fontsize=20)
    buckets = list(figures.streaks.items())
    bottom.bar([k for k, _v in buckets], [v for _k, v in buckets], color=ORANGE)
    bottom.set_title(_("Learners by streak (days)"), fontproperties=font, fontsize=20)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
