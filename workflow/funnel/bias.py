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

SIGMA_B_SMALL = 0.1  # P(sigma_b < 0.1): posterior mass in the neck of the funnel


def estimand_names(counties: Sequence[str]) -> list[str]:
    return ["sigma_b", "log_sigma_b", "p_sigma_b_small", *[f"b[{c}]" for c in counties]]


def estimands(posterior: Any, counties: Sequence[str]) -> dict[str, dict[str, float]]:
    """Name -> {'mean', 'mcse'} for E[sigma_b], E[log sigma_b], P(sigma_b < 0.1), E[b_c]."""
    import arviz as az
    import xarray as xr

    sigma_b = posterior["sigma_b"]
    derived = {
        "sigma_b": sigma_b,
        "log_sigma_b": np.log(sigma_b),
        "p_sigma_b_small": (sigma_b < SIGMA_B_SMALL).astype(float),
    }
    known = {str(c) for c in posterior["county"].values}
    for county in counties:
        if county not in known:
            raise ValueError(f"county {county!r} is not in the posterior; check experiments.reference.counties")
        derived[f"b[{county}]"] = posterior["b"].sel(county=county, drop=True)
    dataset = xr.Dataset({name: value.drop_vars("county", errors="ignore") for name, value in derived.items()})
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
        out[f"est_{name}"] = value["mean"]
        out[f"mcse_{name}"] = value["mcse"]
    return out


def z_columns(row: Mapping[str, Any], reference: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """z-scores of one flat fit record against the reference estimands it shares."""
    out = {}
    for name, ref in reference.items():
        if f"est_{name}" in row and row[f"est_{name}"] is not None:
            fit = {"mean": float(row[f"est_{name}"]), "mcse": float(row[f"mcse_{name}"])}
            out[f"z_{name}"] = z_score(fit, ref)
    return out
