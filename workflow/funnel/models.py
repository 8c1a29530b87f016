"""The varying-intercept, varying-slope radon model in two parameterizations.

    y_i ~ Normal(a[c_i] + b[c_i] * floor_i, eps)
    a_c ~ Normal(mu_a, sigma_a),  b_c ~ Normal(mu_b, sigma_b)

``centered`` samples ``a`` and ``b`` directly: with little data per county the
posterior of (b, sigma_b) is a funnel. ``noncentered`` samples standard-normal
offsets and keeps ``a = mu_a + a_offset * sigma_a`` (same for b) as
deterministics, so both forms report the same variables.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

MODELS = ("centered", "noncentered")
HYPERPARAMETERS = ("mu_a", "sigma_a", "mu_b", "sigma_b", "eps")


def _blog_priors() -> dict[str, Callable[[str], Any]]:
    import pymc as pm

    # Exactly the 2017 blog post's priors.
    return {
        "mu_a": lambda name: pm.Normal(name, mu=0.0, sigma=100**2),
        "sigma_a": lambda name: pm.HalfCauchy(name, beta=5),
        "mu_b": lambda name: pm.Normal(name, mu=0.0, sigma=100**2),
        "sigma_b": lambda name: pm.HalfCauchy(name, beta=5),
        "eps": lambda name: pm.HalfCauchy(name, beta=5),
    }


def _weakly_informative_priors() -> dict[str, Callable[[str], Any]]:
    import pymc as pm

    # posteriordb's radon models: mu ~ N(0, 10), scales ~ HalfNormal(1).
    return {
        "mu_a": lambda name: pm.Normal(name, mu=0.0, sigma=10),
        "sigma_a": lambda name: pm.HalfNormal(name, sigma=1),
        "mu_b": lambda name: pm.Normal(name, mu=0.0, sigma=10),
        "sigma_b": lambda name: pm.HalfNormal(name, sigma=1),
        "eps": lambda name: pm.HalfNormal(name, sigma=1),
    }


PRIOR_SETS: dict[str, Callable[[], dict[str, Callable[[str], Any]]]] = {
    "blog": _blog_priors,
    "weakly_informative": _weakly_informative_priors,
}


def coords_of(table: pd.DataFrame) -> dict[str, list[str]]:
    counties = table.drop_duplicates("county_idx").sort_values("county_idx")["county"].tolist()
    return {"county": counties}


def build_model(table: pd.DataFrame, form: str, priors: str = "blog") -> Any:
    """Build the radon model (a ``pm.Model``) in parameterization ``form`` with prior set ``priors``."""
    import pymc as pm  # imported here so that the report can use this module without PyMC

    if form not in MODELS:
        raise ValueError(f"unknown model {form!r}; choose one of {', '.join(MODELS)}")
    if priors not in PRIOR_SETS:
        raise ValueError(f"unknown prior set {priors!r}; choose one of {', '.join(PRIOR_SETS)}")
    for column in ("county_idx", "floor", "log_radon"):
        if column not in table.columns:
            raise ValueError(f"the data table has no column {column!r}; it must come from the clean rule")
    county_idx = table["county_idx"].to_numpy(dtype=np.int64)
    floor = table["floor"].to_numpy(dtype=float)
    y = table["log_radon"].to_numpy(dtype=float)
    prior = PRIOR_SETS[priors]()
    with pm.Model(coords=coords_of(table)) as model:
        hyper = {name: prior[name](name) for name in HYPERPARAMETERS}
        if form == "centered":
            a = pm.Normal("a", mu=hyper["mu_a"], sigma=hyper["sigma_a"], dims="county")
            b = pm.Normal("b", mu=hyper["mu_b"], sigma=hyper["sigma_b"], dims="county")
        else:
            a_offset = pm.Normal("a_offset", mu=0.0, sigma=1.0, dims="county")
            b_offset = pm.Normal("b_offset", mu=0.0, sigma=1.0, dims="county")
            a = pm.Deterministic("a", hyper["mu_a"] + a_offset * hyper["sigma_a"], dims="county")
            b = pm.Deterministic("b", hyper["mu_b"] + b_offset * hyper["sigma_b"], dims="county")
        mu = a[county_idx] + b[county_idx] * floor
        pm.Normal("y", mu=mu, sigma=hyper["eps"], observed=y)
    return model
