"""Experiments beyond the blog: reference posterior, target_accept and data sweeps.

Each sweep job compiles a (sampler, model) once where it can and returns one
row of diagnostics per (level, seed), with bias z-scores against the
reference run where the data are the survey's own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from .bias import estimand_names, z_columns
from .diagnostics import Thresholds, fit_diagnostics
from .fitting import BatchSampler, FitSettings
from .models import HYPERPARAMETERS

Log = Callable[[str], None]


def reference_run(
    table: pd.DataFrame, settings: FitSettings, seed: int, counties: Sequence[str], small_county: str, log: Log = print
) -> tuple[Any, dict[str, Any]]:
    """A long non-centered run: its reduced trace and its diagnostics and estimands."""
    if settings.model != "noncentered":
        raise ValueError("the reference run uses the non-centered model")
    keep = list(dict.fromkeys([small_county, *counties]))
    sampler = BatchSampler(table, settings, log=log)
    idata = sampler.sample(seed)
    record = fit_diagnostics(idata, small_county, bias_counties=counties)
    # The record already holds every estimand's estimate and MCSE: no second pass.
    summary = {
        "diagnostics": record,
        "estimands": {
            name: {"mean": record[f"est_{name}"], "mcse": record[f"mcse_{name}"]} for name in estimand_names(keep)
        },
    }
    reduced = idata.posterior[list(HYPERPARAMETERS)].assign(b=idata.posterior["b"].sel(county=keep))
    reduced.attrs = idata.posterior.attrs
    idata.posterior = reduced
    return idata, summary


def replicate_homes(table: pd.DataFrame, factor: int) -> pd.DataFrame:
    """Every home ``factor`` times: ``factor`` x the information per county, same counties."""
    if factor < 1:
        raise ValueError(f"replication factor must be >= 1, got {factor}")
    return pd.concat([table] * factor, ignore_index=True)


Known = Mapping[tuple[float, int], Mapping[str, Any]]


def _row(record: Mapping[str, Any], reference: Mapping[str, Any] | None) -> dict[str, Any]:
    """A fit's diagnostics record as a table row (lists as text), with bias z-scores."""
    row = {k: (" ".join(map(str, v)) if isinstance(v, list) else v) for k, v in record.items()}
    if reference:
        row.update(z_columns(row, reference))
    return row


def target_accept_sweep(
    table: pd.DataFrame,
    settings: FitSettings,
    levels: Sequence[float],
    seeds: Sequence[int],
    small_county: str,
    thresholds: Thresholds,
    counties: Sequence[str],
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
                sampler = sampler or BatchSampler(table, settings, log=log)
                record = fit_diagnostics(sampler.sample(seed, target_accept=level), small_county, thresholds, counties)
            row = _row(record, reference)
            rows.append(row)
            source = "the main fit" if (level, seed) in known else "fitted"
            log(
                f"target_accept {level} seed {seed} ({source}): {row['divergences']} divergences, ESS(sigma_b) {row['ess_bulk_sigma_b']:.0f}"
            )
    return pd.DataFrame(rows)


def homes_sweep(
    table: pd.DataFrame,
    settings: FitSettings,
    factors: Sequence[int],
    seeds: Sequence[int],
    small_county: str,
    thresholds: Thresholds,
    counties: Sequence[str] = (),
    known: Known | None = None,
    log: Log = print,
) -> pd.DataFrame:
    """Fit on the survey with every home replicated ``factor`` times (no bias: new posterior).

    ``known`` maps (factor, seed) to the diagnostics of a fit that the sweep would
    repeat exactly (factor 1: a main fit): read, not refitted.
    """
    known = known or {}
    base_median = float(table.groupby("county_idx").size().median())
    rows = []
    for factor in factors:
        sampler = None  # one compile per factor (the data differ), only if needed
        for seed in seeds:
            record = known.get((factor, seed))
            if record is None:
                sampler = sampler or BatchSampler(replicate_homes(table, factor), settings, log=log)
                record = fit_diagnostics(sampler.sample(seed), small_county, thresholds, counties)
            row = _row(record, None)
            row.update(
                homes_factor=int(factor),
                homes_per_county_median=base_median * factor,
                ess_bulk_mu_a_per_s=row["ess_bulk_mu_a"] / row["sampling_seconds"],
                ess_bulk_b_small_per_s=row[f"ess_bulk_b_{small_county}"] / row["sampling_seconds"],
            )
            rows.append(row)
            source = "the main fit" if (factor, seed) in known else "fitted"
            log(f"homes x{factor} seed {seed} ({source}): ESS(sigma_b)/s {row['ess_bulk_sigma_b_per_s']:.1f}")
    return pd.DataFrame(rows)


SWEEP_LEVEL = {"target_accept": "target_accept", "homes_per_county": "homes_factor"}
SWEEP_METRICS = (
    "divergences",
    "step_size_mean",
    "mean_tree_depth",
    "max_treedepth_hits",
    "rhat_max",
    "ess_bulk_sigma_b",
    "ess_bulk_sigma_b_per_s",
    "ess_bulk_mu_a_per_s",
    "ess_bulk_b_small_per_s",
    "homes_per_county_median",
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
