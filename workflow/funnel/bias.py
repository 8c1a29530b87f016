"""Bias of a fit against a long reference run, in units of Monte Carlo standard error.

For each estimand (a posterior expectation) a fit reports its estimate and its
MCSE, both computed by ArviZ. Against the reference run's estimate and MCSE,

    z = (estimate_fit - estimate_ref) / sqrt(mcse_fit**2 + mcse_ref**2)

is approximately standard normal when the fit is unbiased and its MCSE is
honest; |z| of 3 or more flags bias (or an MCSE that understates the error,
which is what a sampler stuck in a funnel also produces).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import records as R
from .models import group_dim
from .records import estimand_names as estimand_names  # the sweeps read it from here


def estimands(posterior: Any, groups: Sequence[str], sigma_b_small: float = 0.1) -> dict[str, dict[str, float]]:
    """Name -> {'mean', 'mcse'} for E[σ], E[log σ], P(σ < sigma_b_small) of σ_b and σ_a, then E[b_g].

    ``sigma_b_small`` marks the funnel's neck (radon: 0.1; see ``datasets.sigma_b_small``); the dataset
    has one, and σ_a's neck is taken at the same value. P(σ < neck) of draws that never enter the neck
    is 0 with an undefined MCSE (NaN): its z-score is then undefined and left out of the tests.
    """
    import arviz as az
    import xarray as xr

    derived = {}
    for scale, (mean, log, below) in R.SCALE_ESTIMANDS.items():
        sigma = posterior[scale]
        derived |= {mean: sigma, log: np.log(sigma), below: (sigma < sigma_b_small).astype(float)}
    dim = group_dim(posterior)
    known = {str(g) for g in posterior[dim].values}
    for group in groups:
        if group not in known:
            raise ValueError(f"group {group!r} is not in the posterior's {dim!r}; check the dataset's bias_groups")
        derived[R.slope_estimand(group)] = posterior["b"].sel({dim: group}, drop=True)
    dataset = xr.Dataset({name: value.drop_vars(dim, errors="ignore") for name, value in derived.items()})
    mcse = az.mcse(dataset, method="mean")
    return {name: {"mean": float(dataset[name].mean()), "mcse": float(mcse[name])} for name in derived}


def z_score(fit: Mapping[str, float], ref: Mapping[str, float]) -> float:
    """(fit mean - reference mean) in units of the combined MCSE."""
    scale = math.hypot(fit["mcse"], ref["mcse"])
    if scale == 0:
        return 0.0 if fit["mean"] == ref["mean"] else math.copysign(math.inf, fit["mean"] - ref["mean"])
    return (fit["mean"] - ref["mean"]) / scale


def flat(est: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """{'sigma_b': {'mean', 'mcse'}} -> {'est_sigma_b': ..., 'mcse_sigma_b': ...} for tables."""
    out: dict[str, float] = {}
    for name, value in est.items():
        out[R.est_column(name)] = value["mean"]
        out[R.mcse_column(name)] = value["mcse"]
    return out


def z_columns(row: Mapping[str, Any], reference: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """z-scores of one flat fit record against the reference estimands it shares."""
    out = {}
    for name, ref in reference.items():
        est = row.get(R.est_column(name))
        if est is not None:
            fit = {"mean": float(est), "mcse": float(row[R.mcse_column(name)])}
            out[R.z_column(name)] = z_score(fit, ref)
    return out
