"""Experiments beyond the blog: reference posterior, target_accept and data sweeps.

Each sweep job compiles a (sampler, model) once where it can and returns one
row of diagnostics per (level, seed), with bias z-scores against the
reference run where the data are the dataset's own (not replicated).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from .bias import estimand_names, z_columns
from .datasets import ModelData
from .diagnostics import Thresholds, fit_diagnostics
from .fitting import BatchSampler, FitSettings
from .models import HYPERPARAMETERS

Log = Callable[[str], None]


def reference_run(data: ModelData, settings: FitSettings, seed: int, log: Log = print) -> tuple[Any, dict[str, Any]]:
    """A long non-centered run: its reduced trace and its diagnostics and estimands."""
    if settings.model != "noncentered":
        raise ValueError("the reference run uses the non-centered model")
    track = str(data.track_group)
    keep = list(dict.fromkeys([track, *data.bias_groups]))
    sampler = BatchSampler(data, settings, log=log)
    idata = sampler.sample(seed)
    record = fit_diagnostics(idata, track, bias_groups=data.bias_groups, sigma_b_small=data.sigma_b_small)
    # The record already holds every estimand's estimate and MCSE: no second pass.
    summary = {
        "diagnostics": record,
        "estimands": {
            name: {"mean": record[f"est_{name}"], "mcse": record[f"mcse_{name}"]} for name in estimand_names(keep)
        },
    }
    dim = data.group_dim
    reduced = idata.posterior[list(HYPERPARAMETERS)].assign(
        a=idata.posterior["a"].sel({dim: keep}), b=idata.posterior["b"].sel({dim: keep})
    )
    reduced.attrs = idata.posterior.attrs
    idata.posterior = reduced
    return idata, summary


def _diagnose(idata: Any, data: ModelData, thresholds: Thresholds) -> dict[str, Any]:
    return fit_diagnostics(idata, str(data.track_group), thresholds, data.bias_groups, data.sigma_b_small)


Known = Mapping[tuple[float, int], Mapping[str, Any]]


def _row(record: Mapping[str, Any], reference: Mapping[str, Any] | None) -> dict[str, Any]:
    """A fit's diagnostics record as a table row (lists as text), with bias z-scores."""
    row = {k: (" ".join(map(str, v)) if isinstance(v, list) else v) for k, v in record.items()}
    if reference:
        row.update(z_columns(row, reference))
    return row


def target_accept_sweep(
    data: ModelData,
    settings: FitSettings,
    levels: Sequence[float],
    seeds: Sequence[int],
    thresholds: Thresholds,
    reference: Mapping[str, Any] | None,
    known: Known | None = None,
    log: Log = print,
) -> pd.DataFrame:
    """One row per (level, seed). ``known`` maps (level, seed) to the diagnostics
    of a fit that the sweep would repeat exactly (a main fit): read, not refitted."""
    known = known or {}
    sampler = None  # compiled once for every level, and only if something is left to fit
    rows = []
    for level in levels:
        for seed in seeds:
            record = known.get((level, seed))
            if record is None:
                sampler = sampler or BatchSampler(data, settings, log=log)
                record = _diagnose(sampler.sample(seed, target_accept=level), data, thresholds)
            row = _row(record, reference)
            rows.append(row)
            source = "the main fit" if (level, seed) in known else "fitted"
            log(
                f"target_accept {level} seed {seed} ({source}): {row['divergences']} divergences, ESS(sigma_b) {row['ess_bulk_sigma_b']:.0f}"
            )
    return pd.DataFrame(rows)


def rows_sweep(
    data: ModelData,
    settings: FitSettings,
    factors: Sequence[int],
    seeds: Sequence[int],
    thresholds: Thresholds,
    known: Known | None = None,
    log: Log = print,
) -> pd.DataFrame:
    """Fit with every row replicated ``factor`` times: more data per group (no bias: new posterior).

    ``known`` maps (factor, seed) to the diagnostics of a fit that the sweep would
    repeat exactly (factor 1: a main fit): read, not refitted.
    """
    known = known or {}
    base_median = float(pd.Series(data.group_idx).value_counts().median())
    track = str(data.track_group)
    rows = []
    for factor in factors:
        sampler = None  # one compile per factor (the data differ), only if needed
        for seed in seeds:
            record = known.get((factor, seed))
            if record is None:
                sampler = sampler or BatchSampler(data.replicate(factor), settings, log=log)
                record = _diagnose(sampler.sample(seed), data, thresholds)
            row = _row(record, None)
            row.update(
                rows_factor=int(factor),
                rows_per_group_median=base_median * factor,
                ess_bulk_mu_a_per_s=row["ess_bulk_mu_a"] / row["sampling_seconds"],
                ess_bulk_b_track_per_s=row[f"ess_bulk_b_{track}"] / row["sampling_seconds"],
            )
            rows.append(row)
            source = "the main fit" if (factor, seed) in known else "fitted"
            log(f"rows x{factor} seed {seed} ({source}): ESS(sigma_b)/s {row['ess_bulk_sigma_b_per_s']:.1f}")
    return pd.DataFrame(rows)


SWEEP_LEVEL = {"target_accept": "target_accept", "rows_per_group": "rows_factor"}
EXPERIMENTS = tuple(SWEEP_LEVEL)
SWEEP_METRICS = (
    "divergences",
    "step_size_mean",
    "mean_tree_depth",
    "max_treedepth_hits",
    "rhat_max",
    "ess_bulk_sigma_b",
    "ess_bulk_sigma_b_per_s",
    "ess_bulk_mu_a_per_s",
    "ess_bulk_b_track_per_s",
    "rows_per_group_median",
    "z_sigma_b",
    "z_log_sigma_b",
    "z_p_sigma_b_small",
    "sampling_seconds",
)


def summarize_sweep(rows: pd.DataFrame, experiment: str) -> pd.DataFrame:
    """Median (and min, max) over seeds per sampler, model and sweep level."""
    level = SWEEP_LEVEL[experiment]
    metrics = [m for m in SWEEP_METRICS if m in rows.columns]
    grouped = rows.groupby(["sampler", "model", level], sort=True)[metrics]
    summary = grouped.median().add_suffix("_median")
    summary = summary.join(grouped.min().add_suffix("_min")).join(grouped.max().add_suffix("_max"))
    summary.insert(0, "seeds", grouped.size())
    return summary.reset_index()
