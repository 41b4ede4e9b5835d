"""The bulletin's two charts as PNG images, drawn with matplotlib (Agg, no display).

A bar chart of person-times by district and a line chart of person-times per day of the
month. Figures are built as :class:`matplotlib.figure.Figure` objects on their own Agg
canvas, never through ``pyplot``: pyplot keeps global state that two requests drawing
at once in worker threads would share. Chinese labels need a CJK font; the posters'
font (``GEO_POSTER_FONT_FILE``) is used, so a bulletin and a poster print alike.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties

#: The union red of the console and the posters.
RED = "#8b1a1a"
DPI = 150


def _png(fig: Figure) -> bytes:
    out = io.BytesIO()
    FigureCanvasAgg(fig)  # the Agg canvas, whatever backend pyplot would choose
    fig.savefig(out, format="png")
    return out.getvalue()


def bar_by_district(rows: Sequence[tuple[str, int]], *, title: str, font_file: str) -> bytes:
    """Person-times per district (``rows``: name, count), largest first, as a PNG."""
    font = FontProperties(fname=font_file)
    fig = Figure(figsize=(7.0, 3.2), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    names = [n for n, _ in rows] or ["—"]
    values = [v for _, v in rows] or [0]
    bars = ax.bar(range(len(values)), values, color=RED)
    ax.bar_label(bars, labels=[f"{v:,}" for v in values], fontproperties=font, fontsize=8)
    ax.set_xticks(range(len(names)), names, fontproperties=font, fontsize=9)
    ax.set_ylabel("人次 person-times", fontproperties=font)
    ax.set_title(title, fontproperties=font)
    ax.spines[["top", "right"]].set_visible(False)
    ax.margins(y=0.15)
    return _png(fig)


def line_by_day(rows: Sequence[tuple[dt.date, int]], *, title: str, font_file: str) -> bytes:
    """Person-times per day of the month (``rows``: every day, count), as a PNG."""
    font = FontProperties(fname=font_file)
    fig = Figure(figsize=(7.0, 3.0), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    days = [d.day for d, _ in rows]
    ax.plot(days, [v for _, v in rows], color=RED, marker="o", markersize=3, linewidth=1.5)
    ax.set_xticks([d for d in days if d == 1 or d % 5 == 0])
    ax.set_xlabel("日 day of the month", fontproperties=font)
    ax.set_ylabel("人次 person-times", fontproperties=font)
    ax.set_title(title, fontproperties=font)
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", linewidth=0.4, alpha=0.6)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)
