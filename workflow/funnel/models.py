"""The varying-intercept, varying-slope model in two parameterizations.

    y_i ~ Normal(a[g_i] + b[g_i] * x_i, eps)
    a_g ~ Normal(mu_a, sigma_a),  b_g ~ Normal(mu_b, sigma_b)

``centered`` samples ``a`` and ``b`` directly: with little data per group the
posterior of (b, sigma_b) is a funnel. ``noncentered`` samples standard-normal
offsets and keeps ``a = mu_a + a_offset * sigma_a`` (same for b) as
deterministics, so both forms report the same variables. The group dimension
is named after the dataset's group column and labelled with its values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .priors import PRIORS, describe_priors

if TYPE_CHECKING:
    from .datasets import ModelData

MODELS = ("centered", "noncentered")
#: Each form's name in prose.
FORM_NAMES = {"centered": "centered", "noncentered": "non-centered"}
HYPERPARAMETERS = ("mu_a", "sigma_a", "mu_b", "sigma_b", "eps")
# The group-specific effects (intercept a, slope b), their non-centered offsets, and the outcome.
EFFECTS = ("a", "b")
OFFSETS = tuple(f"{name}_offset" for name in EFFECTS)
OUTCOME = "y"


def _prior(name: str, spec: dict[str, Any]) -> Any:
    import pymc as pm

    params = {k: v for k, v in spec.items() if k != "dist"}
    return getattr(pm, spec["dist"])(name, **params)


Y_DATA = "y_obs"
# Every name the model gives a variable (a group column may not take one: it names the group dimension).
VARIABLE_NAMES = (*HYPERPARAMETERS, *EFFECTS, *OFFSETS, OUTCOME, Y_DATA)


def build_model(data: ModelData, form: str, priors: str = "blog", mutable_y: bool = False) -> Any:
    """Build the model (a ``pm.Model``) in parameterization ``form`` with prior set ``priors``.

    ``mutable_y=True`` holds the outcome in a ``pm.Data`` container named
    :data:`Y_DATA`, so that one compiled model fits many simulated outcomes on the
    same design (simulation-based calibration); the priors stay those of
    ``data`` (``auto`` priors are scaled to its y, never to a simulated one).
    The default keeps y a constant, as every main fit has it.
    """
    import pymc as pm  # imported here so that the report can use this module without PyMC

    if form not in MODELS:
        raise ValueError(f"unknown model {form!r}; choose one of {', '.join(MODELS)}")
    if priors not in PRIORS:
        raise ValueError(f"unknown prior set {priors!r}; choose one of {', '.join(PRIORS)}")
    dim = data.group_dim
    prior = describe_priors(priors, data)
    with pm.Model(coords={dim: list(data.groups)}) as model:
        hyper = {name: _prior(name, prior[name]) for name in HYPERPARAMETERS}
        if form == "centered":
            a, b = (pm.Normal(name, mu=hyper[f"mu_{name}"], sigma=hyper[f"sigma_{name}"], dims=dim) for name in EFFECTS)
        else:  # the offsets first, then a and b from them (the order of the original model)
            offsets = [pm.Normal(offset, mu=0.0, sigma=1.0, dims=dim) for offset in OFFSETS]
            a, b = (
                pm.Deterministic(name, hyper[f"mu_{name}"] + z * hyper[f"sigma_{name}"], dims=dim)
                for name, z in zip(EFFECTS, offsets)
            )
        mu = a[data.group_idx] + b[data.group_idx] * data.x
        observed = pm.Data(Y_DATA, data.y) if mutable_y else data.y
        pm.Normal(OUTCOME, mu=mu, sigma=hyper["eps"], observed=observed)
    return model


def with_deterministics(posterior: Any) -> Any:
    """The posterior with the non-centered ``a``, ``b`` = ``mu + offset * sigma`` added where a lean
    trace (``fit.store_deterministics: false``) left them out; unchanged otherwise."""
    for name, offset in zip(EFFECTS, OFFSETS):
        if name not in posterior and offset in posterior:
            value = posterior[f"mu_{name}"] + posterior[offset] * posterior[f"sigma_{name}"]
            posterior = posterior.assign({name: value.transpose("chain", "draw", ...)})
    return posterior


def group_dim(posterior: Any) -> str:
    """The group dimension of a trace's ``b`` (named after the dataset's group column)."""
    dims = [d for d in posterior["b"].dims if d not in ("chain", "draw")]
    if len(dims) != 1:
        raise ValueError(f"b has dimensions {posterior['b'].dims}; expected chain, draw and one group dimension")
    return str(dims[0])
