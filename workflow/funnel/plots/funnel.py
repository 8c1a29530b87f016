"""The funnel: a group's slope (or its offset) against σ_b, divergent draws on top."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .style import DIVERGENT_COLOR, OTHER_COLOR


def plot_funnel(
    draws: pd.DataFrame, x: str = "b", ax: Any = None, title: str | None = None, xlabel: str | None = None
) -> Any:
    """Scatter of ``x`` against sigma_b (log axis), divergent draws on top in red."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7, 4.5))[1]
    ok = ~draws["diverging"].to_numpy()
    ax.scatter(draws[x][ok], draws["sigma_b"][ok], s=3, alpha=0.25, color=OTHER_COLOR, linewidths=0, label="draws")
    n_div = int((~ok).sum())
    ax.scatter(
        draws[x][~ok], draws["sigma_b"][~ok], s=14, color=DIVERGENT_COLOR, linewidths=0, label=f"divergent ({n_div})"
    )
    ax.set_yscale("log")
    ax.set_ylabel("σ_b (log scale)")
    ax.set_xlabel(xlabel or x)
    if title:
        ax.set_title(title)
    ax.legend(frameon=False, loc="lower right", markerscale=2)
    return ax
