"""Figures and computed sentences for the experiments notebook (no PyMC needed)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

FORM_COLORS = {"centered": "#d62728", "noncentered": "#1f77b4"}
Z_FLAG = 3.0


def _axes(ncols: int, width: float = 5.0, height: float = 3.6) -> tuple[Any, np.ndarray]:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    return fig, axes[0]


def _jitter(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.12, 0.12, size=n)


def plot_bias(fits: pd.DataFrame, columns: Mapping[str, str]) -> Any:
    """Bias z-scores of every fit, per sampler and form: one panel per estimand."""
    fig, axes = _axes(len(columns))
    groups = list(fits.groupby(["sampler", "model"], sort=True))
    for ax, (column, label) in zip(axes, columns.items()):
        ax.axhspan(-Z_FLAG, Z_FLAG, color="0.92", zorder=0)
        ax.axhline(0, color="0.5", lw=0.8)
        for i, ((_sampler, model), group) in enumerate(groups):
            values = group[column].to_numpy(dtype=float)
            ax.scatter(i + _jitter(len(values), i), values, color=FORM_COLORS.get(model, "k"), s=22, zorder=3)
            ax.plot([i - 0.25, i + 0.25], [np.median(values)] * 2, color="k", lw=1.5, zorder=4)
        ax.set_xticks(range(len(groups)), [f"{s}\n{m}" for (s, m), _ in groups])
        ax.set_ylabel(f"z of {label}")
        ax.set_title(label)
    fig.suptitle(f"Bias against the reference run in MCSE units (grey band: |z| < {Z_FLAG:g}); bar: median over seeds")
    fig.tight_layout()
    return fig


def plot_target_accept(rows: pd.DataFrame) -> Any:
    """ESS(σ_b), divergences and step size against target_accept, per form (dots: seeds)."""
    fig, axes = _axes(3, width=4.4)
    panels = [
        ("ess_bulk_sigma_b", "bulk ESS of σ_b", True),
        ("divergences", "divergences", False),
        ("step_size_mean", "mean step size", True),
    ]
    for ax, (column, label, log) in zip(axes, panels):
        for (sampler, model), group in rows.groupby(["sampler", "model"], sort=True):
            medians = group.groupby("target_accept")[column].median()
            ax.plot(
                medians.index,
                medians.values,
                marker="o",
                color=FORM_COLORS.get(model, "k"),
                ls="-" if sampler == "nutpie" else "--",
                label=f"{model} ({sampler})",
            )
            ax.scatter(group["target_accept"], group[column], color=FORM_COLORS.get(model, "k"), s=10, alpha=0.5)
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("target_accept")
        ax.set_title(label)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_homes(summary: pd.DataFrame, small_county: str) -> Any:
    """ESS per second against homes per county (log-log), per form: the crossover."""
    from matplotlib.ticker import NullLocator

    fig, axes = _axes(3, width=4.4)
    panels = [
        ("ess_bulk_sigma_b_per_s_median", "ESS(σ_b) per second"),
        ("ess_bulk_mu_a_per_s_median", "ESS(μ_a) per second"),
        ("ess_bulk_b_small_per_s_median", f"ESS(b[{small_county}]) per second"),
    ]
    for ax, (column, label) in zip(axes, panels):
        for (sampler, model), group in summary.groupby(["sampler", "model"], sort=True):
            group = group.sort_values("homes_per_county_median_median")
            ax.plot(
                group["homes_per_county_median_median"],
                group[column],
                marker="o",
                color=FORM_COLORS.get(model, "k"),
                ls="-" if sampler == "nutpie" else "--",
                label=f"{model} ({sampler})",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        sizes = sorted(summary["homes_per_county_median_median"].unique())
        ax.set_xticks(sizes, [f"{v:g}" for v in sizes])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("median homes per county")
        ax.set_title(label)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_samplers(fits: pd.DataFrame) -> Any:
    """Per sampler and form, across seeds: divergences, R-hat max, ESS(σ_b) per second."""
    fig, axes = _axes(3, width=4.4)
    groups = list(fits.groupby(["sampler", "model"], sort=True))
    panels = [
        ("divergences", "divergences", False),
        ("rhat_max", "R-hat max", False),
        ("ess_bulk_sigma_b_per_s", "ESS(σ_b) per second", True),
    ]
    for ax, (column, label, log) in zip(axes, panels):
        for i, ((_sampler, model), group) in enumerate(groups):
            values = group[column].to_numpy(dtype=float)
            ax.scatter(i + _jitter(len(values), i), values, color=FORM_COLORS.get(model, "k"), s=22)
        if column == "rhat_max":
            ax.axhline(1.01, color="0.4", ls=":", lw=1)
        if log:
            ax.set_yscale("log")
        ax.set_xticks(range(len(groups)), [f"{s}\n{m}" for (s, m), _ in groups])
        ax.set_title(label)
    fig.tight_layout()
    return fig


def bias_sentence(fits: pd.DataFrame) -> str:
    """How many fits per form have |z(E[σ_b])| >= 3, computed from the table."""
    parts = []
    for model, group in fits.groupby("model", sort=True):
        flagged = int((group["z_sigma_b"].abs() >= Z_FLAG).sum())
        parts.append(
            f"{model}: {flagged} of {len(group)} fits have |z| ≥ {Z_FLAG:g} for E[σ_b] "
            f"(median z {group['z_sigma_b'].median():+.1f}, median ESS(σ_b) {group['ess_bulk_sigma_b'].median():.0f})"
        )
    return "; ".join(parts) + "."


def target_accept_sentence(summary: pd.DataFrame) -> str:
    rows = summary.set_index(["sampler", "model", "target_accept"]).sort_index()
    parts = []
    for (sampler, model), group in rows.groupby(level=[0, 1]):
        low, high = group.index.get_level_values(2).min(), group.index.get_level_values(2).max()
        ess_low = group.xs(low, level=2)["ess_bulk_sigma_b_median"].iloc[0]
        ess_high = group.xs(high, level=2)["ess_bulk_sigma_b_median"].iloc[0]
        div_low = group.xs(low, level=2)["divergences_median"].iloc[0]
        div_high = group.xs(high, level=2)["divergences_median"].iloc[0]
        parts.append(
            f"{model} ({sampler}): from target_accept {low:g} to {high:g}, median divergences "
            f"{div_low:.0f} → {div_high:.0f}, median ESS(σ_b) {ess_low:.0f} → {ess_high:.0f}"
        )
    return "; ".join(parts) + "."


def crossover_sentence(summary: pd.DataFrame) -> str:
    """At which homes-per-county the centered form overtakes the non-centered one, for σ_b."""
    column = "ess_bulk_sigma_b_per_s_median"
    parts = []
    for sampler, group in summary.groupby("sampler", sort=True):
        wide = group.pivot_table(index="homes_per_county_median_median", columns="model", values=column)
        if not {"centered", "noncentered"} <= set(wide.columns):
            continue
        better = wide.index[wide["centered"] > wide["noncentered"]]
        if len(better):
            parts.append(
                f"with {sampler}, the centered form has the higher ESS(σ_b) per second from "
                f"{better.min():g} homes per county (median) on"
            )
        else:
            parts.append(f"with {sampler}, the non-centered form stays ahead at every data size tried")
    return ("; ".join(parts) + ".") if parts else "Both forms are needed for the comparison."


def experiments_line(fits: pd.DataFrame) -> str:
    """One line for the index: the bias headline when the reference ran, else the sampler one."""
    if "z_sigma_b" in fits.columns:
        return bias_sentence(fits)
    medians = fits.groupby(["sampler", "model"])["ess_bulk_sigma_b_per_s"].median()
    return (
        "Median ESS(σ_b) per second: "
        + ", ".join(f"{s} {m} {v:.1f}" for (s, m), v in medians.items())
        + ". No reference run, so no bias z-scores: workflow/presets/experiments.yaml switches the experiments on."
    )
