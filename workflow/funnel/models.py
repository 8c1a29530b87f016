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

from typing import TYPE_CHECKING, Any

import numpy as np

from .forms import EFFECTS, FORMS, NAMES, Centering
from .forms import form as registered_form
from .formula import CommonTerm, Design, GroupTerm
from .glm import OUTCOME, Y_DATA, NamedPriors, Naming, Structure, build_glm
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


#: The shorthand model's structure (funnel.glm.structure of shorthand_design with shorthand_naming).
STRUCTURE = Structure(HYPERPARAMETERS, EFFECTS)
# Every name the model gives a variable (a group column may not take one: it names the group dimension).
VARIABLE_NAMES = (*HYPERPARAMETERS, *EFFECTS, *OFFSETS, *CENTERED_PARTS, OUTCOME, Y_DATA)


def shorthand_formula(data: ModelData) -> str:
    """The formula the columns {group, x, y} stand for: ``y ~ 1 + x + (1 + x | group)``."""
    return f"{data.y_name} ~ 1 + {data.x_name} + (1 + {data.x_name} | {data.group_dim})"


def shorthand_design(data: ModelData) -> Design:
    """The design of :func:`shorthand_formula` on ``data`` (what :func:`funnel.formula.parse_formula` makes of it,
    tests/test_glm.py checks that), built from its arrays: the groups in ``data``'s order."""
    ones = np.ones((len(data.y), 1))
    x = np.asarray(data.x, dtype=float)[:, None]
    g = data.group_dim
    group = {"factor": g, "levels": tuple(data.groups), "index": np.asarray(data.group_idx, dtype=np.int64)}
    return Design(
        formula=shorthand_formula(data),
        dataset=data.dataset,
        response=data.y_name,
        y=np.asarray(data.y, dtype=float),
        trials=None,
        se=None,
        se_column=None,
        common=(
            CommonTerm("Intercept", "intercept", ("Intercept",), ones),
            CommonTerm(data.x_name, "numeric", (data.x_name,), x),
        ),
        group=(
            GroupTerm(name=f"1|{g}", expr="1", kind="intercept", predictor=ones, columns=("1",), **group),
            GroupTerm(
                name=f"{data.x_name}|{g}",
                expr=data.x_name,
                kind="numeric",
                predictor=x,
                columns=(data.x_name,),
                **group,
            ),
        ),
    )


def shorthand_naming(data: ModelData) -> Naming:
    """The blog's names for the shorthand's variables (mu_a, sigma_a, a, ...) and the group column's name
    for the group dimension."""
    g, x = data.group_dim, data.x_name
    return Naming(variables={"Intercept": "mu_a", x: "mu_b", f"1|{g}": "a", f"{x}|{g}": "b"}, dims={g: g})


def build_model(
    data: ModelData, form: str, priors: str = "blog", mutable_y: bool = False, centering: Centering | None = None
) -> Any:
    """Build the model (a ``pm.Model``) in parameterization ``form`` with prior set ``priors``.

    The model is :mod:`funnel.glm`'s of the shorthand formula ``y ~ 1 + x + (1 + x | group)``
    (:func:`shorthand_design`) with the blog's names (:func:`shorthand_naming`) and the named prior set.
    ``mutable_y=True`` holds the outcome in a ``pm.Data`` container named
    :data:`Y_DATA`, so that one compiled model fits many simulated outcomes on the
    same design (simulation-based calibration); the priors stay those of
    ``data`` (``auto`` priors are scaled to its y, never to a simulated one).
    The default keeps y a constant, as every main fit has it.

    Which groups' effects are centered is the form's :class:`~funnel.forms.Centering` (``centering``, or
    computed from ``data`` by the registered form); the model keeps it as ``model.centering``. Every
    sampled variable comes first (mu_a, sigma_a, mu_b, sigma_b, eps, then a's parts, then b's), then the
    deterministics: the centered and non-centered forms are the models they always were.
    """
    registered = registered_form(form)
    if priors not in PRIORS:
        raise ValueError(f"unknown prior set {priors!r}; choose one of {', '.join(PRIORS)}")
    if centering is None:
        centering = registered.centering(data, priors)
    masks = {name: centering.mask(name, data.n_groups) for name in EFFECTS}
    model = build_glm(
        shorthand_design(data),
        "gaussian",
        masks,
        NamedPriors(describe_priors(priors, data)),
        mutable_y=mutable_y,
        naming=shorthand_naming(data),
    )
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
