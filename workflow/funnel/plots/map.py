"""MAP against posterior mean of σ_b, per model form."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..facts import form_key
from .style import form_color


def plot_map_vs_mean(maps: pd.DataFrame, ax: Any = None) -> Any:
    """σ_b: MAP against posterior mean for each model form, in the registry's order (log axis: the centered MAP is
    near 0)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    ax = ax or plt.subplots(figsize=(7, 4))[1]
    maps = maps.iloc[sorted(range(len(maps)), key=lambda i: form_key(str(maps["model"].iloc[i])))]
    models = list(maps["model"])
    x = np.arange(len(models))
    width = 0.36
    handles = []
    for offset, column, name, hatch in (
        (-width / 2, "map_sigma_b", "MAP (find_MAP)", "//"),
        (width / 2, "posterior_mean_sigma_b", "posterior mean (NUTS, median over fits)", ""),
    ):
        values = maps[column].to_numpy(dtype=float)
        bars = ax.bar(
            x + offset, values, width, color=[form_color(m) for m in models], hatch=hatch, edgecolor="black", alpha=0.85
        )
        for bar, value in zip(bars, values):
            ax.annotate(
                f"{value:.2g}", (bar.get_x() + bar.get_width() / 2, value), ha="center", va="bottom", fontsize=9
            )
        handles.append(Patch(facecolor="white", edgecolor="black", hatch=hatch, label=name))
    ax.set_yscale("log")
    ax.set_xticks(x, models)
    ax.set_ylabel("σ_b (log scale)")
    ax.legend(handles=handles, frameon=False)
    return ax
