"""Figures of the analysis page, rendered server-side as standalone SVG documents.

matplotlib with the Agg backend (no display on servers or workers); text is kept as SVG text
so the figures stay small, searchable and sharp, and ids are salted with a constant so the
same numbers always give the same bytes (cacheable, diffable).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

_STYLE: Any = {
    "svg.fonttype": "none",
    "svg.hashsalt": "radreview",
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
# A diverging palette for ordered scales (best to worst) that stays readable in grey print
# and for the common red-green colour blindness.
_DIVERGING = ["#1a9850", "#91cf60", "#d9ef8b", "#fee08b", "#fc8d59", "#d73027", "#7f7f7f"]


def _to_svg(fig: Figure) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return buffer.getvalue()


def scale_by_stratum_svg(counts: pd.DataFrame, *, title: str) -> str:
    """Stacked 100% bars: share of each answer (columns, in scale order) per stratum (rows)."""
    with plt.rc_context(_STYLE):
        height = 1.0 + 0.5 * max(len(counts.index), 1)
        fig, ax = plt.subplots(figsize=(8, height))
        totals = counts.sum(axis=1).replace(0, math.nan)
        shares = counts.div(totals, axis=0).fillna(0.0)
        left = pd.Series(0.0, index=shares.index)
        labels = [str(i) for i in shares.index]
        for n, column in enumerate(shares.columns):
            colour = _DIVERGING[n % len(_DIVERGING)]
            ax.barh(labels, shares[column], left=left, color=colour, label=str(column))
            left = left + shares[column]
        for y in range(len(labels)):
            ax.text(1.01, y, f"n={int(counts.iloc[y].sum())}", va="center", fontsize=8)
        ax.set_xlim(0, 1)
        ax.invert_yaxis()
        ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        ax.set_title(title, loc="left")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=3, frameon=False)
        return _to_svg(fig)


@dataclass(frozen=True)
class ForestRow:
    label: str
    estimate: float
    low: float
    high: float


def _forest(
    rows: Sequence[ForestRow], *, title: str, limits: tuple[float, float], signed: bool
) -> str:
    """One point with its CI per row; ``signed`` draws differences (a line at zero, +/-)."""
    sign = "+" if signed else ""
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(8, 0.8 + 0.35 * max(len(rows), 1)))
        if signed:
            ax.axvline(0, color="#7f7f7f", linewidth=1)
        for y, row in enumerate(rows):
            if math.isnan(row.estimate):
                continue
            ax.plot([row.low, row.high], [y, y], color="#333333", linewidth=1.5)
            ax.plot([row.estimate], [y], marker="s", color="#2166ac", markersize=6)
            ax.text(
                1.02,
                y,
                f"{row.estimate:{sign}.0%} [{row.low:{sign}.0%}, {row.high:{sign}.0%}]",
                va="center",
                fontsize=8,
                transform=ax.get_yaxis_transform(),
            )
        ax.set_yticks(range(len(rows)), [r.label for r in rows])
        ax.set_xlim(*limits)
        ax.invert_yaxis()
        ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        ax.grid(axis="x", alpha=0.3)
        ax.set_title(title, loc="left")
        return _to_svg(fig)


def forest_svg(rows: Sequence[ForestRow], *, title: str) -> str:
    """Forest plot: one point with its CI per row, on a 0-100% axis."""
    return _forest(rows, title=title, limits=(0, 1), signed=False)


def per_reader_svg(rates: pd.DataFrame, *, title: str) -> str:
    """Bars of one outcome's rate per reader (columns ``reader``, ``rate``, ``n``)."""
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(8, 0.8 + 0.35 * max(len(rates), 1)))
        labels = [str(r) for r in rates["reader"]]
        ax.barh(labels, rates["rate"], color="#4393c3")
        for y, (rate, n) in enumerate(zip(rates["rate"], rates["n"], strict=True)):
            ax.text(rate + 0.01, y, f"{rate:.0%} (n={n})", va="center", fontsize=8)
        ax.set_xlim(0, 1.15)
        ax.invert_yaxis()
        ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        ax.set_title(title, loc="left")
        return _to_svg(fig)


def difference_forest_svg(rows: Sequence[ForestRow], *, title: str) -> str:
    """Forest plot of differences in percentage points, on an axis symmetric about zero."""
    finite = [r for r in rows if not math.isnan(r.estimate)]
    reach = max([abs(v) for r in finite for v in (r.low, r.high) if not math.isnan(v)] or [0.1])
    reach = min(1.0, math.ceil(reach * 10 + 0.5) / 10)
    return _forest(rows, title=title, limits=(-reach, reach), signed=True)


def win_matrix_svg(names: Sequence[str], wins: Sequence[Sequence[float]], *, title: str) -> str:
    """Heat map of head-to-head results: cell (row i, column j) is the share of i's
    comparisons with j that i won (ties half each), annotated "won/compared"."""
    size = len(names)
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(1.8 + 1.3 * size, 1.2 + 0.9 * size))
        shares = [[math.nan] * size for _ in range(size)]
        for i in range(size):
            for j in range(size):
                games = wins[i][j] + wins[j][i]
                if i != j and games:
                    shares[i][j] = wins[i][j] / games
                    ax.text(j, i, f"{wins[i][j]:g}/{games:g}", ha="center", va="center", fontsize=9)
        image = ax.imshow(shares, cmap="RdBu", vmin=0, vmax=1)
        ax.set_xticks(range(size), list(names), rotation=30, ha="right")
        ax.set_yticks(range(size), list(names))
        ax.set_xlabel("against")
        ax.spines[:].set_visible(False)
        colour_bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        colour_bar.ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        colour_bar.set_label("share won")
        ax.set_title(title, loc="left")
        return _to_svg(fig)
