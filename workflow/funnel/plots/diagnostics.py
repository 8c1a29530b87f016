"""Diagnostics of every fit across seeds, per sampler and form."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .style import fit_groups, panels, pass_mark, readable_log_axis, seed_strip


def _strips(fits: pd.DataFrame, specs: list[tuple[str, str, float | None, bool]], title: str | None) -> Any:
    fig, axes = panels(len(specs), width=4.0, height=4.0)
    groups = fit_groups(fits)
    for ax, (column, label, line, log) in zip(axes, specs):
        seed_strip(ax, fits, column, groups)
        if line is not None:
            pass_mark(ax, line)
        if log:
            ax.set_yscale("log")
            readable_log_axis(ax)
        ax.set_title(label)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_across_seeds(fits: pd.DataFrame, rhat_max: float, ess_min: float) -> Any:
    """Divergences, R-hat(σ_b) and bulk ESS(σ_b) of every fit, per sampler and form; medians as bars."""
    return _strips(
        fits,
        [
            ("divergences", "divergences per fit", None, False),
            ("rhat_sigma_b", "R-hat(σ_b)", rhat_max, False),
            ("ess_bulk_sigma_b", "bulk ESS(σ_b)", ess_min, True),
        ],
        "every seed's fit: points; median across seeds: black bar",
    )


def plot_samplers(fits: pd.DataFrame, rhat_max: float) -> Any:
    """Per sampler and form, across seeds: divergences, R-hat max, ESS(σ_b) per second."""
    return _strips(
        fits,
        [
            ("divergences", "divergences", None, False),
            ("rhat_max", "R-hat max", rhat_max, False),
            ("ess_bulk_sigma_b_per_s", "ESS(σ_b) per second", None, True),
        ],
        None,
    )


def plot_scales_across_seeds(fits: pd.DataFrame, scales: list[str], ess_min: float) -> Any:
    """A formula model's fits per sampler and form: divergences, and each group-level scale's bulk ESS (against
    the pass mark) and bulk ESS per second; medians as bars."""
    specs: list[tuple[str, str, float | None, bool]] = [("divergences", "divergences per fit", None, False)]
    for scale in scales:
        specs += [(f"ess_bulk_{scale}", f"bulk ESS({scale})", ess_min, True)]
        specs += [(f"ess_bulk_{scale}_per_s", f"bulk ESS({scale}) per second", None, True)]
    return _strips(fits, specs, "every seed's fit: points; median across seeds: black bar")
