"""The ``partial`` form's rule: which groups' effects to center, from how much each group's data say.

A group's effect is best sampled centered when its data pin it down more tightly than the group-level
distribution does (the posterior is then close to the likelihood, and the offsets of the non-centered
form would be tied to the scale), and non-centered when the prior dominates (the funnel). Betancourt's
"mixed parameterisation" and Papaspiliopoulos, Roberts & Sköld (2007) compare the two precisions:

- intercept of group g: centered when  n_g / eps²  >  1 / sigma_a²,  i.e.  n_g · sigma_a² / eps² > 1;
- slope of group g: centered when  S_g · sigma_b² / eps² > SLOPE_THRESHOLD,  with
  S_g = Σ_i (x_i − x̄_g)² = n_g · var_g(x) (the population variance), the slope's information when the
  group's intercept is estimated too. A group whose x does not vary (S_g = 0) says nothing about its
  slope and is never centered.

The slope's threshold is stricter (:data:`SLOPE_THRESHOLD`): the issue measured 34–167 divergences
per radon fit when the 3 slopes with Σx² · sigma_b² / eps² > 1 were centered, and none with every
slope non-centered; a slope's posterior is also correlated with its intercept, which a per-effect
rule ignores.

eps, sigma_a and sigma_b come from a cheap deterministic **pilot**: the maximum of the exact marginal
likelihood of the hyperparameters, the group effects integrated out (type-II maximum likelihood, as
lme4 fits the model; :func:`funnel.marginal.marginal_loglik`), by L-BFGS-B from moment estimates.
It needs no sampling and no compilation (milliseconds on radon) and gives the same numbers on every
run. The MAP of the non-centered model is not used: its joint mode over offsets and scales is far
from the posterior (radon: sigma_b 5.6 against a posterior mean of 0.28).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .datasets import ModelData

#: The intercept's threshold on n_g · sigma_a² / eps² and the slope's on S_g · sigma_b² / eps².
INTERCEPT_THRESHOLD = 1.0
SLOPE_THRESHOLD = 4.0
#: The pilot's method, named in the store key (change it when the pilot changes).
PILOT = "type-II ML of the marginal likelihood, L-BFGS-B from moments (v1)"


def slope_information(data: ModelData) -> np.ndarray:
    """S_g = Σ_i (x_i − x̄_g)² per group."""
    n = np.bincount(data.group_idx, minlength=data.n_groups).astype(float)
    sx = np.bincount(data.group_idx, weights=data.x, minlength=data.n_groups)
    sxx = np.bincount(data.group_idx, weights=data.x**2, minlength=data.n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = sxx - np.where(n > 0, sx**2 / n, 0.0)
    return np.clip(s, 0.0, None)


def pilot(data: ModelData) -> dict[str, float]:
    """The type-II maximum likelihood of (mu_a, sigma_a, mu_b, sigma_b, eps): deterministic, no sampling."""
    from scipy import optimize

    from .marginal import group_stats, marginal_loglik

    stats = group_stats(data)
    x, y = np.asarray(data.x, float), np.asarray(data.y, float)
    slope, intercept = np.polyfit(x, y, 1) if np.ptp(x) > 0 else (0.0, float(np.mean(y)))
    sd = float(np.std(y - intercept - slope * x)) or 1.0
    start = np.array([intercept, np.log(sd / 2), slope, np.log(sd / 2 / (np.std(x) or 1.0)), np.log(sd)])

    def loss(theta: np.ndarray) -> float:
        mu_a, log_sa, mu_b, log_sb, log_eps = theta
        value = marginal_loglik(stats, mu_a, np.exp(log_sa), mu_b, np.exp(log_sb), np.exp(log_eps))
        return -float(np.sum(value)) if np.isfinite(np.sum(value)) else 1e300

    bounds = [(None, None), (-20.0, 20.0), (None, None), (-20.0, 20.0), (-20.0, 20.0)]
    found = optimize.minimize(loss, start, method="L-BFGS-B", bounds=bounds)
    mu_a, log_sa, mu_b, log_sb, log_eps = found.x
    return {
        "mu_a": float(mu_a),
        "sigma_a": float(np.exp(log_sa)),
        "mu_b": float(mu_b),
        "sigma_b": float(np.exp(log_sb)),
        "eps": float(np.exp(log_eps)),
    }


def centered_groups(
    data: ModelData,
    eps: float,
    sigma_a: float,
    sigma_b: float,
    intercept_threshold: float | None = None,
    slope_threshold: float | None = None,
) -> dict[str, np.ndarray]:
    """Per effect, one bool per group: True where the rule centers that group's effect. A threshold left out is
    the module's as it is at the call (:data:`INTERCEPT_THRESHOLD`, :data:`SLOPE_THRESHOLD`), as the store key
    reads them, not a default bound at import."""
    intercept = INTERCEPT_THRESHOLD if intercept_threshold is None else intercept_threshold
    slope = SLOPE_THRESHOLD if slope_threshold is None else slope_threshold
    n = np.bincount(data.group_idx, minlength=data.n_groups).astype(float)
    return {
        "a": n * sigma_a**2 / eps**2 > intercept,
        "b": slope_information(data) * sigma_b**2 / eps**2 > slope,
    }


def partial_centering(data: ModelData, priors: str = "blog") -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The partial form's centering on ``data``: per effect the centered groups, and the record of the split
    (the pilot's inputs and time). The priors do not enter it."""
    start = time.perf_counter()
    point = pilot(data)
    masks = centered_groups(data, point["eps"], point["sigma_a"], point["sigma_b"])
    record = {
        "centered_a": int(masks["a"].sum()),
        "centered_b": int(masks["b"].sum()),
        "pilot_eps": point["eps"],
        "pilot_sigma_a": point["sigma_a"],
        "pilot_sigma_b": point["sigma_b"],
        "pilot_seconds": time.perf_counter() - start,
    }
    return masks, record


def split_text(record: Mapping[str, Any]) -> str:
    """The split of a partial fit, for the report (from its record's fields)."""
    return (
        f" Partially centered: the intercepts of {record['centered_a']} groups and the slopes of "
        f"{record['centered_b']} are sampled centered, the rest non-centered (intercept: n_g·σ_a²/eps² > "
        f"{INTERCEPT_THRESHOLD:g}; slope: Σ(x − x̄_g)²·σ_b²/eps² > {SLOPE_THRESHOLD:g}; pilot eps "
        f"{record['pilot_eps']:.3g}, σ_a {record['pilot_sigma_a']:.3g}, σ_b {record['pilot_sigma_b']:.3g}, "
        f"{record['pilot_seconds']:.2f} s)."
    )
