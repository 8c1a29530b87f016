"""The prior sets of the hyperparameters: ``blog``, ``weakly_informative`` and ``auto`` (scaled to the data).

:func:`describe_priors` gives each hyperparameter's prior as ``{"dist": <PyMC class>, <parameters>}``;
:func:`prior_variable` makes one the PyMC variable the models build on (PyMC is imported only there).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import DataError

if TYPE_CHECKING:
    from .datasets import ModelData

PRIORS = ("blog", "weakly_informative", "auto")


def prior_variable(name: str, spec: Mapping[str, Any], **kwargs: Any) -> Any:
    """The PyMC variable ``name`` of a prior spec ({'dist': <PyMC distribution>, <its parameters>}); ``kwargs``
    (dims, shape) go to the distribution. Inside a model context."""
    import pymc as pm

    params = {k: v for k, v in spec.items() if k != "dist"}
    return getattr(pm, spec["dist"])(name, **params, **kwargs)


def describe_priors(priors: str, data: ModelData) -> dict[str, dict[str, Any]]:
    """The prior of each hyperparameter: ``{name: {"dist": ..., <parameters>}}``.

    ``auto`` scales weakly informative priors to the data (as rstanarm and Bambi
    autoscale), with m_y = mean(y), s_y = sd(y), s_x = sd(x) (sample sd, ddof 1):

        mu_a ~ Normal(m_y, 2.5 s_y)      sigma_a ~ HalfNormal(s_y)
        mu_b ~ Normal(0, 2.5 s_y / s_x)  sigma_b ~ HalfNormal(s_y / s_x)
        eps  ~ HalfNormal(s_y)
    """
    if priors == "blog":  # exactly the 2017 blog post's
        wide, scale = {"dist": "Normal", "mu": 0.0, "sigma": 100.0**2}, {"dist": "HalfCauchy", "beta": 5.0}
        return {"mu_a": wide, "sigma_a": scale, "mu_b": wide, "sigma_b": scale, "eps": scale}
    if priors == "weakly_informative":  # posteriordb's radon models
        loc, scale = {"dist": "Normal", "mu": 0.0, "sigma": 10.0}, {"dist": "HalfNormal", "sigma": 1.0}
        return {"mu_a": loc, "sigma_a": scale, "mu_b": loc, "sigma_b": scale, "eps": scale}
    if priors == "auto":
        m_y, s_y, s_x = float(np.mean(data.y)), float(np.std(data.y, ddof=1)), float(np.std(data.x, ddof=1))
        if not (s_y > 0 and s_x > 0 and math.isfinite(s_y / s_x)):
            raise DataError(f"priors 'auto' need sd(y) > 0 and sd(x) > 0; got sd(y) {s_y}, sd(x) {s_x}")
        return {
            "mu_a": {"dist": "Normal", "mu": m_y, "sigma": 2.5 * s_y},
            "sigma_a": {"dist": "HalfNormal", "sigma": s_y},
            "mu_b": {"dist": "Normal", "mu": 0.0, "sigma": 2.5 * s_y / s_x},
            "sigma_b": {"dist": "HalfNormal", "sigma": s_y / s_x},
            "eps": {"dist": "HalfNormal", "sigma": s_y},
        }
    raise ValueError(f"unknown prior set {priors!r}; choose one of {', '.join(PRIORS)}")
