"""Simulation-based calibration (SBC) of a parameterization and sampler on a dataset's design.

Talts et al. (2018), Modrák et al. (2023). For simulation i of dataset d:

1. theta ~ prior and y ~ model(theta) on d's design (its groups, group sizes and
   x values), drawn from the very model that is fitted (:func:`simulate`), with
   a seed that depends on (d, i) alone (:func:`simulation_seed`), never on how
   simulations are batched into jobs;
2. the model is fitted to y; the draws are thinned by the fit's ESS so that the
   kept ones are close to independent (:func:`thinning`, as the SBC package
   does), and the rank of each true value among the kept draws is recorded
   (:func:`ranks`) for the hyperparameters, a and b of the tracked group, and
   the log-likelihood of the simulated data (a data-dependent test quantity);
3. if the computation is right, every quantity's ranks are uniform across
   simulations (:func:`uniformity`: a chi-square test on bins and the ECDF of
   the scaled ranks against the 95% simultaneous band of Säilynoja, Bürkner
   and Vehtari (2022), computed by ArviZ).

This module is the library part; the campaign's rules (issue #14) are not
written yet.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .datasets import ModelData
from .models import HYPERPARAMETERS


def simulation_seed(dataset: str, index: int) -> int:
    """The seed of simulation ``index`` of ``dataset``: a function of the two alone."""
    if index < 0:
        raise ValueError(f"simulation index must be >= 0, got {index}")
    name = int.from_bytes(hashlib.sha256(dataset.encode()).digest()[:8], "little")
    return int(np.random.SeedSequence([name, int(index)]).generate_state(1, dtype=np.uint64)[0] >> 1)


def simulate(data: ModelData, priors: str, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One draw of (theta, y) from the prior predictive of the model on ``data``'s design.

    The draw comes from the fitted model itself (PyMC's ``pm.draw`` of its
    random variables), so the simulation and the fit can never disagree on the
    model. Returns the true values (hyperparameters, ``a`` and ``b`` per group)
    and the simulated outcome, one value per row of the design.
    """
    import pymc as pm

    from .models import build_model

    model = build_model(data, "centered", priors)
    names = [*HYPERPARAMETERS, "a", "b", "y"]
    values = pm.draw([model[name] for name in names], random_seed=int(seed))
    truth = {name: np.asarray(value, dtype=float) for name, value in zip(names[:-1], values[:-1])}
    return truth, np.asarray(values[-1], dtype=float)


def thinning(n_draws: int, ess: float, rank_draws: int) -> int:
    """Keep every k-th draw: about one per effective draw, and at least ``rank_draws`` kept where possible."""
    if n_draws < 1:
        raise ValueError("no draws to thin")
    by_ess = max(1, math.floor(n_draws / max(float(ess), 1.0)))
    by_count = max(1, n_draws // max(int(rank_draws), 1))
    return min(by_ess, by_count)


def log_likelihood(data: ModelData, a: np.ndarray, b: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """log p(y | a, b, eps) of ``data`` for each draw (leading axis of a, b: draws; eps: draws)."""
    from scipy.stats import norm

    mu = a[:, data.group_idx] + b[:, data.group_idx] * data.x[None, :]
    return norm.logpdf(data.y[None, :], loc=mu, scale=np.asarray(eps)[:, None]).sum(axis=1)


def ranks(
    posterior: Any,
    truth: Mapping[str, np.ndarray],
    data: ModelData,
    thin: int,
    rank_draws: int,
) -> dict[str, Any]:
    """Ranks of the true values among ``rank_draws`` draws kept every ``thin``-th (chains pooled).

    Quantities: the hyperparameters, ``a`` and ``b`` of the tracked group and
    the log-likelihood of the simulated data. A rank counts the kept draws below
    the truth (0..n, n the draws kept). Returns ``{"rank_<q>": int, ..., "rank_n": n, "thin": thin}``.
    """
    from .models import with_deterministics

    posterior = with_deterministics(posterior)
    track = data.groups.index(str(data.track_group))
    flat = {
        name: posterior[name].stack(sample=("chain", "draw")).transpose("sample", ...).values
        for name in [*HYPERPARAMETERS, "a", "b"]
    }
    kept = np.arange(0, next(iter(flat.values())).shape[0], thin)[:rank_draws]
    out: dict[str, Any] = {}
    for name in HYPERPARAMETERS:
        out[f"rank_{name}"] = int((flat[name][kept] < truth[name]).sum())
    for name in ("a", "b"):
        out[f"rank_{name}_track"] = int((flat[name][kept, track] < truth[name][track]).sum())
    draws_ll = log_likelihood(data, flat["a"][kept], flat["b"][kept], flat["eps"][kept])
    true_ll = log_likelihood(data, truth["a"][None, :], truth["b"][None, :], np.atleast_1d(truth["eps"]))[0]
    out["rank_loglik"] = int((draws_ll < true_ll).sum())
    out["rank_n"] = int(kept.size)
    out["thin"] = int(thin)
    return out


def uniformity(rank_values: Sequence[int], n: Sequence[int] | int, bins: int = 10) -> dict[str, Any]:
    """Are the ranks uniform? A chi-square test on ``bins`` equal bins of the scaled ranks, and the
    ECDF of the scaled ranks against the 95% simultaneous band for uniform values (ArviZ).

    Ranks are scaled to (rank + 0.5) / (n + 1), so fits that kept different
    numbers of draws can be pooled. The chi-square test is the one in Talts et
    al.; the band (Säilynoja et al. 2022) does not depend on a choice of bins
    and is the one the ECDF-difference plots show.
    """
    from arviz.stats.ecdf_utils import compute_ecdf, ecdf_confidence_band
    from scipy.stats import chisquare

    r = np.asarray(rank_values, dtype=float)
    total = np.broadcast_to(np.asarray(n, dtype=float), r.shape)
    if r.size < bins:
        raise ValueError(f"{r.size} ranks are too few for {bins} bins")
    u = (r + 0.5) / (total + 1.0)
    counts = np.histogram(u, bins=bins, range=(0.0, 1.0))[0]
    chi2 = chisquare(counts)
    points = np.linspace(0.0, 1.0, 101)[1:-1]
    ecdf = compute_ecdf(np.sort(u), points)
    lower, upper = ecdf_confidence_band(u.size, points, points, prob=0.95, method="optimized")
    outside = int(((ecdf < lower) | (ecdf > upper)).sum())
    return {
        "simulations": int(r.size),
        "chi2": float(chi2.statistic),
        "chi2_p": float(chi2.pvalue),
        "bins": int(bins),
        "ecdf_points_outside_band": outside,
        "uniform": bool(outside == 0),
    }
