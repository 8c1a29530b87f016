"""An independent reference for the Gaussian model: the group effects integrated out exactly.

The model (:mod:`funnel.models`) is

    y_i ~ Normal(a[g_i] + b[g_i] x_i, eps),  a_g ~ Normal(mu_a, sigma_a),  b_g ~ Normal(mu_b, sigma_b),

with a_g and b_g independent. Given the hyperparameters, group g's outcomes are
multivariate normal,

    y_g ~ MVN(mu_a + mu_b x_g,  S_g = eps^2 I + Z_g D Z_g^T),  Z_g = [1, x_g],  D = diag(sigma_a^2, sigma_b^2),

so the posterior of the five hyperparameters is known up to a constant without
any group effect: this collapsed model has no funnel, and NUTS samples it
easily. With U_g = Z_g D^(1/2) and M_g = I_2 + U_g^T U_g / eps^2 (2 x 2), the
matrix determinant lemma and Woodbury's identity give, for r_g = y_g - Z_g (mu_a, mu_b),

    log det S_g     = 2 n_g log eps + log det M_g
    r_g^T S_g^-1 r_g = r_g^T r_g / eps^2 - v_g^T M_g^-1 v_g / eps^4,   v_g = U_g^T r_g,

which need only each group's sufficient statistics n_g, sum x, sum x^2, sum y,
sum xy and sum y^2: O(n_g) once, then O(1) per group and evaluation, vectorized
over groups (:func:`marginal_loglik`). D^(1/2) is never inverted, so sigma -> 0 is
harmless. The group effects are then drawn from their exact conditional normal
given each posterior draw (:func:`draw_group_effects`): with (a_g, b_g) =
(mu_a, mu_b) + D^(1/2) w_g, w_g | y, hyper ~ N(M_g^-1 v_g / eps^2, M_g^-1). The
result has the non-centered fit's posterior variables (mu_a, sigma_a, mu_b,
sigma_b, eps, a, b) and NUTS's sample statistics, so ArviZ's R-hat, ESS,
divergences and BFMI apply to it as to any fit (:func:`reference_idata`).

The reference is independent of the forms under test: a different model (no
group effects sampled), so neither form's funnel nor its sampler's adaptation
to it can leak into the reference. The priors are exactly those of
:func:`funnel.models.build_model` (:func:`funnel.priors.describe_priors`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .datasets import ModelData
from .marginal import group_stats, marginal_loglik, terms
from .models import HYPERPARAMETERS
from .priors import describe_priors

POTENTIAL = "marginal_y"  # the collapsed likelihood's name in the PyMC model
SAMPLER = "pymc-collapsed"  # what a reference trace says it was made by
MODEL = "collapsed"


def build_collapsed_model(data: ModelData, priors: str = "blog") -> Any:
    """The collapsed model as a ``pm.Model``: the five hyperparameters with :func:`funnel.models.build_model`'s
    priors and the integrated likelihood as a potential (:data:`POTENTIAL`)."""
    import pymc as pm
    import pytensor.tensor as pt

    from .priors import prior_variable

    prior = describe_priors(priors, data)
    stats = group_stats(data)
    with pm.Model() as model:
        hyper = {name: prior_variable(name, prior[name]) for name in HYPERPARAMETERS}
        pm.Potential(POTENTIAL, marginal_loglik(stats, *(hyper[n] for n in HYPERPARAMETERS), xp=pt))
    return model


def draw_group_effects(
    data: ModelData, hyper: Mapping[str, np.ndarray], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One draw of every group's (a, b) from its exact conditional given each hyperparameter draw.

    ``hyper`` maps the five hyperparameters to arrays of one shape (e.g. chain x draw); returns a and b
    of that shape plus a trailing group axis.
    """
    stats = group_stats(data)
    shape = np.shape(hyper["mu_a"])
    h = {name: np.asarray(hyper[name], dtype=float)[..., None] for name in HYPERPARAMETERS}
    t = terms(np, stats, h["mu_a"], h["sigma_a"], h["mu_b"], h["sigma_b"], h["eps"])
    # w | y ~ N(M^-1 v / eps^2, M^-1): mean by the 2 x 2 inverse, noise by L^-T z with M = L L^T.
    mean1 = (t["m22"] * t["v1"] - t["m12"] * t["v2"]) / t["det"] / t["e2"]
    mean2 = (t["m11"] * t["v2"] - t["m12"] * t["v1"]) / t["det"] / t["e2"]
    l11 = np.sqrt(t["m11"])
    l21 = t["m12"] / l11
    l22 = np.sqrt(t["det"] / t["m11"])  # = sqrt(m22 - l21^2)
    z = rng.standard_normal((2, *shape, len(data.groups)))
    w2 = mean2 + z[1] / l22
    w1 = mean1 + (z[0] - l21 * z[1] / l22) / l11
    return h["mu_a"] + h["sigma_a"] * w1, h["mu_b"] + h["sigma_b"] * w2


def reference_idata(
    data: ModelData,
    settings: Any,
    seed: int,
    log: Callable[[str], None] = print,
) -> Any:
    """The collapsed-model reference run: NUTS (PyMC's) on the five hyperparameters, then every group's
    a and b drawn from their exact conditional per draw. An ``arviz.InferenceData`` with the
    non-centered fit's posterior variables (a and b on the dataset's group dimension) and NUTS's
    ``sample_stats``, so that :func:`funnel.diagnostics.fit_diagnostics` (R-hat, ESS, divergences,
    BFMI, the bias estimands and their MCSEs) applies unchanged.

    ``settings`` is anything with ``chains``, ``tune``, ``draws``, ``target_accept`` and ``priors``
    (a :class:`funnel.fitting.FitSettings`; its ``threads``, if any, caps the parallel chains).
    """
    import pymc as pm

    if int(settings.chains) < 2:
        raise ValueError("the collapsed reference needs at least 2 chains (R-hat compares chains)")
    started = time.perf_counter()
    model = build_collapsed_model(data, str(settings.priors))
    cores = max(1, min(int(getattr(settings, "threads", 1) or 1), int(settings.chains)))
    log(
        f"collapsed reference: {settings.chains} chains x {settings.draws} draws (tune {settings.tune}, "
        f"target_accept {settings.target_accept}), seed {seed}, {cores} process(es)"
    )
    with model:
        sample_start = time.perf_counter()
        idata = pm.sample(
            draws=int(settings.draws),
            tune=int(settings.tune),
            chains=int(settings.chains),
            cores=cores,
            target_accept=float(settings.target_accept),
            random_seed=int(seed),
            progressbar=False,
            compute_convergence_checks=False,
            nuts_sampler="pymc",
        )
        sampling_seconds = time.perf_counter() - sample_start
    post = idata.posterior
    hyper = {name: post[name].values for name in HYPERPARAMETERS}
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xC011A95ED]))
    a, b = draw_group_effects(data, hyper, rng)
    dim = data.group_dim
    coords = {"chain": post["chain"].values, "draw": post["draw"].values, dim: list(data.groups)}
    posterior = (
        post[list(HYPERPARAMETERS)]
        .assign(a=(("chain", "draw", dim), a), b=(("chain", "draw", dim), b))
        .assign_coords(coords)
    )
    posterior.attrs = {
        **post.attrs,
        "dataset": data.dataset,
        "sampler": SAMPLER,
        "model": MODEL,
        "seed": int(seed),
        "chains": int(settings.chains),
        "draws": int(settings.draws),
        "tune": int(settings.tune),
        "target_accept": float(settings.target_accept),
        "priors": str(settings.priors),
        "sampling_seconds": float(sampling_seconds),
        # pm.sample compiles the model itself: its time is in sampling_seconds; this is building the model.
        "compile_seconds": float(sample_start - started),
    }
    idata.posterior = posterior
    return idata
