"""The experiments' figures: bias against the reference run, the target_accept sweep, the rows-per-group crossover."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from ..facts import Z_FLAG, form_key
from ..prose import ROWS_AXIS
from .style import fit_groups, form_color, panels, sampler_line, seed_strip


def plot_bias(fits: pd.DataFrame, columns: Mapping[str, str], z_flag: float = Z_FLAG) -> Any:
    """Bias z-scores of every fit, per sampler and form: one panel per estimand (column -> label)."""
    fig, axes = panels(len(columns), width=5.0, height=3.8)
    groups = fit_groups(fits)
    for ax, (column, label) in zip(axes, columns.items()):
        ax.axhspan(-z_flag, z_flag, color="0.92", zorder=0)
        ax.axhline(0, color="0.5", lw=0.8)
        seed_strip(ax, fits, column, groups)
        ax.set_ylabel(f"z of {label}")
        ax.set_title(label)
    fig.suptitle(f"Bias against the reference run in MCSE units (grey band: |z| < {z_flag:g}); bar: median over seeds")
    fig.tight_layout()
    return fig


def _sweep_lines(ax: Any, frame: pd.DataFrame, x: str, y: str, seeds: pd.DataFrame | None = None) -> None:
    """One line per (sampler, model): colour by form, style by sampler; ``seeds`` adds each seed as a dot."""
    groups = sorted(frame.groupby(["sampler", "model"]), key=lambda item: (item[0][0], form_key(item[0][1])))
    for (sampler, model), group in groups:
        group = group.sort_values(x)
        ax.plot(
            group[x],
            group[y],
            marker="o",
            color=form_color(model),
            ls=sampler_line(sampler),
            label=f"{model} ({sampler})",
        )
    if seeds is not None:
        for model, group in seeds.groupby("model", sort=True):
            ax.scatter(group[x], group[y.removesuffix("_median")], color=form_color(model), s=10, alpha=0.5)


def plot_target_accept(rows: pd.DataFrame) -> Any:
    """ESS(σ_b), divergences and step size against target_accept, per form (line: median, dots: seeds)."""
    fig, axes = panels(3)
    for ax, (column, label, log) in zip(
        axes,
        [
            ("ess_bulk_sigma_b", "bulk ESS of σ_b", True),
            ("divergences", "divergences", False),
            ("step_size_mean", "mean step size", True),
        ],
    ):
        medians = rows.groupby(["sampler", "model", "target_accept"])[column].median().rename(f"{column}_median")
        _sweep_lines(ax, medians.reset_index(), "target_accept", f"{column}_median", rows)
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("target_accept")
        ax.set_title(label)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_rows_crossover(summary: pd.DataFrame, track_group: str) -> Any:
    """ESS per second against the median rows per group (log-log), per form: the crossover."""
    from matplotlib.ticker import NullLocator

    fig, axes = panels(3)
    sizes = sorted(summary[ROWS_AXIS].unique())
    for ax, (column, label) in zip(
        axes,
        [
            ("ess_bulk_sigma_b_per_s_median", "ESS(σ_b) per second"),
            ("ess_bulk_mu_a_per_s_median", "ESS(μ_a) per second"),
            ("ess_bulk_b_track_per_s_median", f"ESS(b[{track_group}]) per second"),
        ],
    ):
        _sweep_lines(ax, summary, ROWS_AXIS, column)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(sizes, [f"{v:g}" for v in sizes])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("median rows per group")
        ax.set_title(label)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig
