"""The funnel: a group's slope (or its offset) against σ_b, or any effect against its scale, divergent draws on top."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from .style import DIVERGENT_COLOR, OTHER_COLOR


def plot_funnel(
    draws: pd.DataFrame,
    x: str = "b",
    ax: Any = None,
    title: str | None = None,
    xlabel: str | None = None,
    scale: str = "sigma_b",
    scale_label: str = "σ_b",
) -> Any:
    """Scatter of ``x`` against its group-level ``scale`` (σ_b by default; log axis), divergent draws on top in
    red."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7, 4.5))[1]
    ok = ~draws["diverging"].to_numpy()
    ax.scatter(draws[x][ok], draws[scale][ok], s=3, alpha=0.25, color=OTHER_COLOR, linewidths=0, label="draws")
    n_div = int((~ok).sum())
    ax.scatter(
        draws[x][~ok], draws[scale][~ok], s=14, color=DIVERGENT_COLOR, linewidths=0, label=f"divergent ({n_div})"
    )
    ax.set_yscale("log")
    ax.set_ylabel(f"{scale_label} (log scale)")
    ax.set_xlabel(xlabel or x)
    if title:
        ax.set_title(title)
    ax.legend(frameon=False, loc="lower right", markerscale=2)
    return ax


def plot_scale_funnels(rows: Sequence[tuple[str, str, Mapping[str, tuple[pd.DataFrame, str, str]]]]) -> Any:
    """A formula model's funnels, one row per group-level scale, one panel per form: ``rows`` holds, per scale, its
    variable, its label and, per form, (draws, the x variable, its label) (:func:`funnel.traces.level_draws`)."""
    import matplotlib.pyplot as plt

    columns = max((len(forms) for _, _, forms in rows), default=1)
    fig, axes = plt.subplots(len(rows), columns, figsize=(5.2 * columns, 3.8 * len(rows)), squeeze=False)
    for r, (scale, label, forms) in enumerate(rows):
        for c, (form, (draws, x, xlabel)) in enumerate(forms.items()):
            plot_funnel(
                draws, x, ax=axes[r, c], title=f"{form}: {xlabel}", xlabel=xlabel, scale=scale, scale_label=label
            )
        for c in range(len(forms), columns):
            axes[r, c].set_visible(False)
    fig.tight_layout()
    return fig
