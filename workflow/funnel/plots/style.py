"""One look for every figure: a colour per model form, the strip of seeds per group, pass marks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..facts import group_order
from ..forms import FORMS

# One colour per model form, in every figure (funnel.forms).
FORM_COLORS = {name: form.color for name, form in FORMS.items()}
OTHER_COLOR = "#34495e"
DIVERGENT_COLOR = "#e31a1c"
NEUTRAL_COLOR = "#7f8c8d"
HIGHLIGHT_COLOR = "#e67e22"
# One line style per sampler in the sweep figures.
SAMPLER_LINES = {"nutpie": "-", "pymc": "--"}


def form_color(model: str) -> str:
    return FORM_COLORS.get(model, OTHER_COLOR)


def sampler_line(sampler: str) -> str:
    return SAMPLER_LINES.get(sampler, ":")


def panels(ncols: int, width: float = 4.4, height: float = 3.8) -> tuple[Any, np.ndarray]:
    """A figure with ``ncols`` side-by-side axes."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    return fig, axes[0]


def fit_groups(fits: pd.DataFrame) -> list[tuple[str, str]]:
    """The (sampler, model) pairs of a fits table: by sampler, then in the registry's order of forms."""
    return group_order(fits)


def seed_strip(ax: Any, fits: pd.DataFrame, column: str, groups: Sequence[tuple[str, str]] | None = None) -> None:
    """Every seed's value of ``column`` as a dot per (sampler, model), the median as a black bar."""
    groups = list(groups or fit_groups(fits))
    for i, (sampler, model) in enumerate(groups):
        values = fits.loc[fits["sampler"].eq(sampler) & fits["model"].eq(model), column].to_numpy(dtype=float)
        if not len(values):
            continue
        jitter = np.linspace(-0.18, 0.18, len(values)) if len(values) > 1 else np.zeros(1)
        ax.scatter(i + jitter, values, s=22, color=form_color(model), alpha=0.8, zorder=3)
        ax.hlines(np.median(values), i - 0.3, i + 0.3, color="black", lw=2, zorder=4)
    ax.set_xticks(range(len(groups)), [f"{s}\n{m}" for s, m in groups])


def pass_mark(ax: Any, value: float, text: str = "pass mark") -> None:
    """A dotted horizontal line at a threshold, labelled with its value."""
    ax.axhline(value, color="grey", ls=":", lw=1.2)
    ax.annotate(
        f"{text} {value:g}",
        xy=(0.01, value),
        xycoords=("axes fraction", "data"),
        ha="left",
        va="top",
        fontsize=8,
        color="dimgrey",
    )


def readable_log_axis(ax: Any, axis: str = "y") -> None:
    """A log axis with plain tick labels at 1, 2, 5 x 10^k."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(NullFormatter())
