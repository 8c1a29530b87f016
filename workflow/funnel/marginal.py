"""The exact marginal likelihood of the hyperparameters, the group effects integrated out.

Derived in :mod:`funnel.collapsed`'s docstring (the collapsed reference); kept apart, with NumPy only, so that
the partial form's pilot (:mod:`funnel.partial`) can use it without importing the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .datasets import ModelData


@dataclass(frozen=True)
class GroupStats:
    """Per-group sufficient statistics of the design and outcome (arrays of length n_groups)."""

    n: np.ndarray
    sx: np.ndarray
    sxx: np.ndarray
    sy: np.ndarray
    sxy: np.ndarray
    syy: np.ndarray


def group_stats(data: ModelData) -> GroupStats:
    """n_g, sum x, sum x^2, sum y, sum xy, sum y^2 of every group (in ``data.groups`` order)."""
    k = len(data.groups)
    idx = np.asarray(data.group_idx)
    x, y = np.asarray(data.x, dtype=float), np.asarray(data.y, dtype=float)

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(idx, weights=values, minlength=k).astype(float)

    return GroupStats(
        n=total(np.ones_like(x)), sx=total(x), sxx=total(x * x), sy=total(y), sxy=total(x * y), syy=total(y * y)
    )


def terms(xp: Any, s: GroupStats, mu_a: Any, sigma_a: Any, mu_b: Any, sigma_b: Any, eps: Any) -> dict[str, Any]:
    """M_g's entries and determinant, v_g and r_g^T r_g (numpy or pytensor via ``xp``)."""
    e2 = eps**2
    # Z^T r and r^T r from the sufficient statistics, r = y - mu_a - mu_b x.
    t1 = s.sy - s.n * mu_a - mu_b * s.sx
    t2 = s.sxy - mu_a * s.sx - mu_b * s.sxx
    rr = s.syy - 2 * mu_a * s.sy - 2 * mu_b * s.sxy + s.n * mu_a**2 + 2 * mu_a * mu_b * s.sx + mu_b**2 * s.sxx
    m11 = 1 + sigma_a**2 * s.n / e2
    m12 = sigma_a * sigma_b * s.sx / e2
    m22 = 1 + sigma_b**2 * s.sxx / e2
    det = m11 * m22 - m12**2
    v1, v2 = sigma_a * t1, sigma_b * t2
    return {"m11": m11, "m12": m12, "m22": m22, "det": det, "v1": v1, "v2": v2, "rr": rr, "e2": e2}


def marginal_loglik(s: GroupStats, mu_a: Any, sigma_a: Any, mu_b: Any, sigma_b: Any, eps: Any, xp: Any = np) -> Any:
    """log p(y | mu_a, sigma_a, mu_b, sigma_b, eps) with the group effects integrated out, summed over
    groups (module docstring). ``xp`` is numpy (scalars) or ``pytensor.tensor`` (model graphs)."""
    t = terms(xp, s, mu_a, sigma_a, mu_b, sigma_b, eps)
    quad_m = (t["m22"] * t["v1"] ** 2 - 2 * t["m12"] * t["v1"] * t["v2"] + t["m11"] * t["v2"] ** 2) / t["det"]
    quad = t["rr"] / t["e2"] - quad_m / t["e2"] ** 2
    logdet = s.n * xp.log(t["e2"]) + xp.log(t["det"])
    return -0.5 * xp.sum(s.n * math.log(2 * math.pi) + logdet + quad)
