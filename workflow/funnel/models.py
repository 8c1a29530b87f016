"""The varying-intercept, varying-slope model in any registered parameterization (:mod:`funnel.forms`).

    y_i ~ Normal(a[g_i] + b[g_i] * x_i, eps)
    a_g ~ Normal(mu_a, sigma_a),  b_g ~ Normal(mu_b, sigma_b)

``centered`` samples ``a`` and ``b`` directly: with little data per group the
posterior of (b, sigma_b) is a funnel. ``noncentered`` samples standard-normal
offsets and keeps ``a = mu_a + a_offset * sigma_a`` (same for b) as
deterministics, so both forms report the same variables. Any other form of
:data:`funnel.forms.FORMS` mixes the two per group (``partial``: centered groups
in ``a_centered``, the others in ``a_offset``, ``a`` their deterministic
union). The group dimension is named after the dataset's group column and
labelled with its values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .forms import EFFECTS, FORMS, NAMES, Centering
from .forms import form as registered_form
from .priors import PRIORS, describe_priors

if TYPE_CHECKING:
    from .datasets import ModelData

#: The registered forms (funnel.forms), in order.
MODELS = NAMES
#: Each form's name in prose.
FORM_NAMES = {name: f.prose for name, f in FORMS.items()}
HYPERPARAMETERS = ("mu_a", "sigma_a", "mu_b", "sigma_b", "eps")
# The group-specific effects (intercept a, slope b), their non-centered offsets, their centered part in a
# mixed form, and the outcome.
OFFSETS = tuple(f"{name}_offset" for name in EFFECTS)
CENTERED_PARTS = tuple(f"{name}_centered" for name in EFFECTS)
OUTCOME = "y"


def prior_variable(name: str, spec: Mapping[str, Any], **kwargs: Any) -> Any:
    """The PyMC variable ``name`` of a prior spec ({'dist': <PyMC distribution>, <its parameters>}); ``kwargs``
    (dims, shape) go to the distribution. Inside a model context."""
    import pymc as pm

    params = {k: v for k, v in spec.items() if k != "dist"}
    return getattr(pm, spec["dist"])(name, **params, **kwargs)


Y_DATA = "y_obs"
# Every name the model gives a variable (a group column may not take one: it names the group dimension).
VARIABLE_NAMES = (*HYPERPARAMETERS, *EFFECTS, *OFFSETS, *CENTERED_PARTS, OUTCOME, Y_DATA)


def build_model(
    data: ModelData, form: str, priors: str = "blog", mutable_y: bool = False, centering: Centering | None = None
) -> Any:
    """Build the model (a ``pm.Model``) in parameterization ``form`` with prior set ``priors``.

    ``mutable_y=True`` holds the outcome in a ``pm.Data`` container named
    :data:`Y_DATA`, so that one compiled model fits many simulated outcomes on the
    same design (simulation-based calibration); the priors stay those of
    ``data`` (``auto`` priors are scaled to its y, never to a simulated one).
    The default keeps y a constant, as every main fit has it.

    Which groups' effects are centered is the form's :class:`~funnel.forms.Centering` (``centering``, or
    computed from ``data`` by the registered form); the model keeps it as ``model.centering``. Every
    sampled variable comes first, in the order of :data:`EFFECTS` (an effect's centered part before its
    offsets), then the deterministics: the centered and non-centered forms are the models they always were.
    """
    import pymc as pm  # imported here so that the report can use this module without PyMC
    import pytensor.tensor as pt

    registered = registered_form(form)
    if priors not in PRIORS:
        raise ValueError(f"unknown prior set {priors!r}; choose one of {', '.join(PRIORS)}")
    if centering is None:
        centering = registered.centering(data, priors)
    masks = {name: centering.mask(name, data.n_groups) for name in EFFECTS}
    dim = data.group_dim
    prior = describe_priors(priors, data)
    with pm.Model(coords={dim: list(data.groups)}) as model:
        hyper = {name: prior_variable(name, prior[name]) for name in HYPERPARAMETERS}
        effects: dict[str, Any] = {}
        parts: dict[str, tuple[Any, Any]] = {}
        for name, offset, part in zip(EFFECTS, OFFSETS, CENTERED_PARTS):
            mu, sigma, mask = hyper[f"mu_{name}"], hyper[f"sigma_{name}"], masks[name]
            if mask.all():
                effects[name] = pm.Normal(name, mu=mu, sigma=sigma, dims=dim)
            elif not mask.any():
                parts[name] = (None, pm.Normal(offset, mu=0.0, sigma=1.0, dims=dim))
            else:
                parts[name] = (
                    pm.Normal(part, mu=mu, sigma=sigma, shape=int(mask.sum())),
                    pm.Normal(offset, mu=0.0, sigma=1.0, shape=int((~mask).sum())),
                )
        for name, (centered, z) in parts.items():  # a and b from their parts (the order of the original model)
            mu, sigma, mask = hyper[f"mu_{name}"], hyper[f"sigma_{name}"], masks[name]
            if centered is None:
                value = mu + z * sigma
            else:
                value = pt.zeros(data.n_groups)
                value = pt.set_subtensor(value[np.flatnonzero(mask)], centered)
                value = pt.set_subtensor(value[np.flatnonzero(~mask)], mu + z * sigma)
            effects[name] = pm.Deterministic(name, value, dims=dim)
        a, b = effects["a"], effects["b"]
        mu = a[data.group_idx] + b[data.group_idx] * data.x
        observed = pm.Data(Y_DATA, data.y) if mutable_y else data.y
        pm.Normal(OUTCOME, mu=mu, sigma=hyper["eps"], observed=observed)
    model.centering = centering
    return model


def with_deterministics(posterior: Any) -> Any:
    """The posterior with the non-centered ``a``, ``b`` = ``mu + offset * sigma`` added where a lean
    trace (``fit.store_deterministics: false``) left them out; unchanged otherwise."""
    for name, offset in zip(EFFECTS, OFFSETS):
        if name not in posterior and offset in posterior and f"{name}_centered" not in posterior:
            value = posterior[f"mu_{name}"] + posterior[offset] * posterior[f"sigma_{name}"]
            posterior = posterior.assign({name: value.transpose("chain", "draw", ...)})
    return posterior


def group_dim(posterior: Any) -> str:
    """The group dimension of a trace's ``b`` (named after the dataset's group column)."""
    dims = [d for d in posterior["b"].dims if d not in ("chain", "draw")]
    if len(dims) != 1:
        raise ValueError(f"b has dimensions {posterior['b'].dims}; expected chain, draw and one group dimension")
    return str(dims[0])
