"""The data notebook's figures: rows per group, and the predictor x across and within groups."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .style import HIGHLIGHT_COLOR, NEUTRAL_COLOR


def plot_rows_per_group(counts: pd.DataFrame, group: str, track_group: str, few_rows: int = 5, ax: Any = None) -> Any:
    """Sorted bars of rows per group (``counts`` from facts.group_counts); small groups and the tracked one marked."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(9, 3.6))[1]
    x = np.arange(len(counts))
    few = counts["rows"].le(few_rows).to_numpy()
    ax.bar(x[~few], counts["rows"][~few], color=NEUTRAL_COLOR, width=0.85, label=f"more than {few_rows} rows")
    if few.any():
        ax.bar(x[few], counts["rows"][few], color=HIGHLIGHT_COLOR, width=0.85, label=f"1 to {few_rows} rows")
    where = int(np.flatnonzero(counts[group].astype(str).to_numpy() == track_group)[0])
    ax.annotate(
        f"{track_group} (tracked)",
        (where, counts["rows"].iloc[where]),
        xytext=(max(where - len(counts) * 0.15, 0), counts["rows"].max() * 0.6),
        arrowprops={"arrowstyle": "->"},
    )
    if counts["rows"].max() > 10 * counts["rows"].min():
        ax.set_yscale("log")
        ax.set_ylabel("rows (log scale)")
    else:
        ax.set_ylabel("rows")
    ax.set_xlabel(f"{group} (sorted by number of rows)")
    ax.set_xticks([])
    ax.legend(frameon=False)
    return ax


def plot_x_split(counts: pd.DataFrame, x: str, low: float, high: float, ax: Any = None) -> Any:
    """Binary x: per group, rows at the lower and at the higher value (stacked); groups without the higher marked."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(9, 3.6))[1]
    pos = np.arange(len(counts))
    ax.bar(pos, counts["x_low"], color="#5d6d7e", width=0.85, label=f"{x} = {low:g}")
    ax.bar(pos, counts["x_high"], bottom=counts["x_low"], color="#f5b041", width=0.85, label=f"{x} = {high:g}")
    none = counts["x_high"].eq(0).to_numpy()
    if none.any():
        top = counts["rows"][none] + 0.02 * counts["rows"].max()
        ax.scatter(pos[none], top, marker="v", s=14, color="black", label=f"no row with {x} = {high:g}")
    ax.set_xlabel("group (sorted by number of rows)")
    ax.set_ylabel("rows")
    ax.set_xticks([])
    ax.legend(frameon=False)
    return ax


def plot_x_histogram(table: pd.DataFrame, x: str, group: str, ax: Any = None) -> Any:
    """Non-binary x: its histogram over all rows, and the range of x within each group beneath."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, (ax, below) = plt.subplots(2, 1, figsize=(9, 5), sharex=True, height_ratios=[2, 1])
    else:
        below = None
    values = table[x].to_numpy(dtype=float)
    bins = min(40, max(len(np.unique(values)), 5))
    ax.hist(values, bins=bins, color=NEUTRAL_COLOR, edgecolor="white")
    ax.set_ylabel("rows")
    ax.set_title(f"distribution of {x}")
    if below is not None:
        spans = table.groupby(group, sort=True)[x].agg(["min", "max"]).sort_values(["min", "max"])
        pos = np.arange(len(spans))
        below.hlines(pos, spans["min"], spans["max"], color=HIGHLIGHT_COLOR, lw=2)
        below.scatter(spans["min"], pos, s=6, color="black", zorder=3)
        below.scatter(spans["max"], pos, s=6, color="black", zorder=3)
        below.set_yticks([])
        below.set_ylabel(f"{group}\n(min to max)")
        below.set_xlabel(x)
    else:
        ax.set_xlabel(x)
    return ax
