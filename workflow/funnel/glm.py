"""A hierarchical GLM in PyMC from a formula's design (:mod:`funnel.formula`), in any centering per term and group.

    eta_i = X_i . beta + sum over group-specific terms t of  u_t[g_t(i)] . z_t(i)
    y_i   ~ family(link^-1(eta_i))
    u_t[l] ~ Normal(0, sigma_t)       (independent across terms, levels and predictor columns)

except that a group-specific term whose common twin is in the formula (``1|g`` with ``Intercept``, ``x|g``
with ``x``) carries the groups' own coefficients, centered on the common one: ``u_t[l] ~ Normal(beta, sigma_t)``
and beta leaves X (hierarchical centering, :func:`anchors`; the same model, the lesson's centered form).

As Bambi builds it: the common terms carry the fixed effects (``Intercept``, ``x``, a categorical ``period``:
one variable per term), each group-specific term ``expr|factor`` has zero-mean normal effects with its own
scale ``sigma_<term>`` (``sigma_1|g``), and the terms are independent (no correlation between a group's
intercept and slope). Families and their canonical links: ``gaussian`` (identity; residual scale ``eps``, or
the design's known per-row standard errors when it has an ``se`` column: no ``eps``), ``bernoulli`` (logit),
``binomial`` (logit, trials from ``p(k, n)``) and ``poisson`` (log).

**Centering** is chosen per term and per level of its factor, as :mod:`funnel.forms` does for ``a`` and ``b``
(a :class:`~funnel.forms.Centering` whose keys are the term names, a plain mapping, or one bool for all):
centered samples ``<term>`` ~ Normal(mean, sigma) directly (mean 0, or its anchor's coefficient);
non-centered samples ``<term>_offset`` ~ Normal(0, 1) and keeps ``<term>`` = mean + offset × sigma as a
deterministic; a mix samples the centered levels in
``<term>_centered`` and the others in ``<term>_offset``, ``<term>`` their deterministic union. Every form
reports the same ``<term>`` with the factor's dimension.

**Priors** (:func:`auto_priors`, as rstanarm's defaults, on the link scale) with s = sd(y) and m = mean(y) for
gaussian, s = 1 and m = 0 for the other families, sd() the sample sd (ddof 1) of a design column:

    Intercept        ~ Normal(m, 2.5 s)
    beta_k           ~ Normal(0, 2.5 s / sd(x_k))       each other common column k
    eps              ~ Exponential(1 / s)               gaussian without known se (rstanarm's prior_aux)
    sigma_<term>     ~ Exponential(sd(z_j) / s)         per predictor column j of the term (sd = 1 for an intercept)

rstanarm puts the intercept's prior on centered predictors; here it is on the intercept of the design as it
stands (Bambi's choice). For the group-level scales rstanarm's ``decov(1, 1, 1, 1)`` reduces, for one
independent effect, to an Exponential(1) on the scale's ratio to the data's scale; it multiplies by the
residual sd for gaussian where this uses sd(y), and does not divide by sd(z): both keep each scale's prior
independent of the others and free of the predictors' units. A user's prior per parameter
(``{"sigma_1|g": {"dist": "HalfNormal", "sigma": 1.0}}``) replaces the auto one: any PyMC distribution by
name with its parameters, validated by :func:`check_priors` (unknown parameter or distribution, a bad
parameter, a scale's prior with support below zero) with a :class:`~funnel.errors.DataError`.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import DataError
from .formula import CommonTerm, Design, GroupTerm
from .priors import prior_variable

FAMILIES = ("gaussian", "bernoulli", "binomial", "poisson")
OUTCOME = "y"
Y_DATA = "y_obs"
RESIDUAL = "eps"
INTERCEPT = "Intercept"


@dataclass(frozen=True)
class Naming:
    """The names a model gives its variables and dimensions, when not Bambi's: ``variables`` maps a common
    or group-specific term's name to the caller's (``{"Intercept": "mu_a", "1|county": "a"}``; a term's
    scale, offsets and centered part follow its new name: ``sigma_a``, ``a_offset``); ``dims`` maps a grouping
    factor to its dimension's name (``{"county": "county"}``; Bambi's ``county__factor_dim`` otherwise)."""

    variables: Mapping[str, str] = field(default_factory=dict)
    dims: Mapping[str, str] = field(default_factory=dict)

    def var(self, name: str) -> str:
        return self.variables.get(name, name)


BAMBI = Naming()


@dataclass(frozen=True)
class TermNames:
    """The variables of one group-specific term: its effects, their scale, offsets and centered part, and the
    dimensions of its levels and (for several predictor columns) its columns."""

    effect: str
    sigma: str
    offset: str
    centered: str
    level_dim: str
    column_dim: str | None


def term_names(term: GroupTerm, naming: Naming = BAMBI) -> TermNames:
    effect = naming.var(term.name)
    return TermNames(
        effect=effect,
        sigma=f"sigma_{effect}",
        offset=f"{effect}_offset",
        centered=f"{effect}_centered",
        level_dim=naming.dims.get(term.factor, f"{term.factor}__factor_dim"),
        column_dim=f"{effect}__expr_dim" if len(term.columns) > 1 else None,
    )


def common_dim(term: CommonTerm) -> str | None:
    return f"{term.name}_dim" if len(term.columns) > 1 else None


def anchors(design: Design) -> dict[str, str]:
    """Group-specific term -> the common term whose coefficient is its effects' mean (hierarchical centering).

    A one-column term ``1|g`` or ``x|g`` whose formula also has the common term ``Intercept`` or ``x`` (the same
    column of the design) varies that coefficient by group: its effects are the groups' own coefficients,
    centered on the common one (``a_g ~ Normal(mu_a, sigma_a)``, the centered form of Gelfand, Sahu & Carlin
    1995 and of the 2017 blog), and the common term adds nothing more to eta. Each common term anchors the
    first such term only; every other group-specific term (``1|h`` crossed with ``1|g``, ``1|g:h``, a term
    without its common twin) has zero-mean effects, as Bambi's.
    """
    out: dict[str, str] = {}
    for term in design.group:
        if len(term.columns) != 1:
            continue
        for common in design.common:
            if common.name in out.values() or len(common.columns) != 1:
                continue
            same = (term.kind == "intercept" and common.kind == "intercept") or (
                term.kind == "numeric" and common.kind == "numeric" and common.name == term.expr
            )
            if same and np.array_equal(common.matrix[:, 0], term.predictor[:, 0]):
                out[term.name] = common.name
                break
    return out


@dataclass(frozen=True)
class Structure:
    """A model's variables by role, as the diagnostics, the records and the verdict read them: its scalar
    parameters (``hyperparameters``, in the model's order: each common coefficient and the scale of the term it
    anchors, the other scales, ``eps``) and its group-specific effects (one per term, each with its scale
    ``sigma_<effect>``, :attr:`scales`)."""

    hyperparameters: tuple[str, ...]
    effects: tuple[str, ...]

    @property
    def scales(self) -> tuple[str, ...]:
        """The group-level scales, one per effect (the verdict's speed is the slowest-mixing one's)."""
        return tuple(f"sigma_{effect}" for effect in self.effects)


def structure(design: Design, family: str, naming: Naming = BAMBI) -> Structure:
    """The structure of :func:`build_glm`'s model of ``design``: its scalar parameters (:func:`parameters` of
    shape ()) and the effects of its one-column terms."""
    hyper = tuple(name for name, shape in parameters(design, family, naming).items() if shape == ())
    return Structure(hyper, tuple(term_names(t, naming).effect for t in design.group if len(t.columns) == 1))


def prior_order(design: Design, family: str) -> list[CommonTerm | GroupTerm | None]:
    """The parameters that take a prior, in the order the model creates them: each common term's coefficient,
    then the scale of the group-specific term it anchors (:func:`anchors`), then the other terms' scales, then
    ``eps`` (``None``; gaussian without known se)."""
    anchored = anchors(design)
    order: list[CommonTerm | GroupTerm | None] = []
    for common in design.common:
        order += [common, *(t for t in design.group if anchored.get(t.name) == common.name)]
    order += [t for t in design.group if t.name not in anchored]
    return [*order, None] if family == "gaussian" and design.se is None else order


# --- checks -------------------------------------------------------------------------------------------------


def check_family(design: Design, family: str) -> None:
    """The family's data checks (each names the dataset, the column and the fix)."""
    where = f"dataset {design.dataset!r}: {family} outcome {design.response!r}"
    if family not in FAMILIES:
        raise DataError(f"dataset {design.dataset!r}: unknown family {family!r}; choose one of {', '.join(FAMILIES)}")
    if (family == "binomial") != (design.trials is not None):
        fix = "write the response as p(successes, trials)" if family == "binomial" else "use family binomial"
        raise DataError(f"{where}: binomial needs a p(successes, trials) response and only binomial takes one; {fix}")
    if design.se is not None and family != "gaussian":
        raise DataError(f"{where}: known standard errors ({design.se_column!r}) go with family gaussian only")
    y = design.y
    if family == "bernoulli" and not np.isin(y, (0.0, 1.0)).all():
        raise DataError(f"{where} has values other than 0 and 1; recode it as 0/1")
    if family in ("binomial", "poisson"):
        if (y < 0).any() or not np.equal(np.round(y), y).all():
            raise DataError(f"{where} has negative or non-integer counts; counts must be whole numbers >= 0")
    if family == "binomial":
        trials = design.trials
        if (trials < y).any() or not np.equal(np.round(trials), trials).all():
            raise DataError(f"{where}: the trials have non-integer values or fewer trials than successes in some rows")


def _sd(values: np.ndarray, what: str, design: Design) -> float:
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    if not (sd > 0 and np.isfinite(sd)):
        raise DataError(
            f"dataset {design.dataset!r}: {what} is constant (sd {sd}); the auto priors scale by its sd: "
            "drop it from the formula or give its priors explicitly"
        )
    return sd


def _is_constant(column: np.ndarray) -> bool:
    return bool(np.all(column == column[0]))


def auto_priors(design: Design, family: str, naming: Naming = BAMBI) -> dict[str, dict[str, Any]]:
    """The ``auto`` prior of every parameter (formulas in the module's docstring)."""
    gaussian = family == "gaussian"
    s = _sd(design.y, f"the outcome {design.response!r}", design) if gaussian else 1.0
    m = float(np.mean(design.y)) if gaussian else 0.0
    priors: dict[str, dict[str, Any]] = {}
    for term in design.common:
        if term.kind == "intercept":
            priors[naming.var(term.name)] = {"dist": "Normal", "mu": m, "sigma": 2.5 * s}
            continue
        scales = [2.5 * s / _sd(term.matrix[:, j], f"the column {c!r}", design) for j, c in enumerate(term.columns)]
        priors[naming.var(term.name)] = {
            "dist": "Normal",
            "mu": 0.0,
            "sigma": scales[0] if len(scales) == 1 else scales,
        }
    for term in design.group:
        rates = [
            1.0 / s
            if _is_constant(term.predictor[:, j])
            else _sd(term.predictor[:, j], f"the column {c!r}", design) / s
            for j, c in enumerate(term.columns)
        ]
        priors[term_names(term, naming).sigma] = {"dist": "Exponential", "lam": rates[0] if len(rates) == 1 else rates}
    if gaussian and design.se is None:
        priors[RESIDUAL] = {"dist": "Exponential", "lam": 1.0 / s}
    return priors


def parameter_name(item: CommonTerm | GroupTerm | None, naming: Naming = BAMBI) -> str:
    """The variable of one of :func:`prior_order`'s items: a coefficient, a term's scale, or ``eps``."""
    if item is None:
        return RESIDUAL
    return term_names(item, naming).sigma if isinstance(item, GroupTerm) else naming.var(item.name)


def parameters(design: Design, family: str, naming: Naming = BAMBI) -> dict[str, tuple[int, ...]]:
    """Every parameter that takes a prior, with its shape, in the model's order; the group-level scales and
    ``eps`` are scales."""
    return {
        parameter_name(item, naming): (() if item is None or len(item.columns) == 1 else (len(item.columns),))
        for item in prior_order(design, family)
    }


def _is_scale(name: str) -> bool:
    return name == RESIDUAL or name.startswith("sigma_")


def check_prior_names(priors: Mapping[str, Any], design: Design, family: str, naming: Naming = BAMBI) -> None:
    """The part of :func:`check_priors` that needs no PyMC: every prior names a parameter of the model and is
    written as ``{dist: <name>, <its parameters>}``."""
    shapes = parameters(design, family, naming)
    where = f"dataset {design.dataset!r}: prior"
    for name, spec in priors.items():
        if name not in shapes:
            raise DataError(
                f"{where} for {name!r}: the model has no such parameter; its parameters are {', '.join(shapes)}"
            )
        if not isinstance(spec, Mapping) or "dist" not in spec:
            raise DataError(f"{where} for {name!r}: write it as {{dist: <PyMC distribution>, <its parameters>}}")


def check_priors(priors: Mapping[str, Any], design: Design, family: str, naming: Naming = BAMBI) -> None:
    """Refuse a user's prior that names no parameter, an unknown PyMC distribution or parameter, a parameter
    value the distribution rejects, or a scale's prior that puts mass below zero."""
    import pymc as pm

    check_prior_names(priors, design, family, naming)
    shapes = parameters(design, family, naming)
    where = f"dataset {design.dataset!r}: prior"
    for name, spec in priors.items():
        dist = spec["dist"]
        cls = getattr(pm, str(dist), None)
        if not (isinstance(cls, type) and issubclass(cls, pm.Distribution)) or not hasattr(cls, "rv_op"):
            raise DataError(
                f"{where} for {name!r}: {dist!r} is not a PyMC distribution (e.g. Normal, HalfNormal, Exponential, StudentT)"
            )
        params = {k: v for k, v in spec.items() if k != "dist"}
        accepted = [p for p in inspect.signature(cls.dist).parameters if p not in ("args", "kwargs", "cls")]
        unknown = [p for p in params if p not in accepted]
        if unknown:
            raise DataError(
                f"{where} for {name!r}: {dist} has no parameter(s) {', '.join(unknown)}; it takes {', '.join(accepted)}"
            )
        try:
            rv = cls.dist(**params, shape=shapes[name])
            pm.logp(rv, np.ones(shapes[name])).eval()  # PyMC checks the parameters' values here
            below = pm.logp(rv, -np.ones(shapes[name])).eval()
        except Exception as error:  # noqa: BLE001 - PyMC raises TypeError, ValueError, ParameterValueError, ...
            raise DataError(
                f"{where} for {name!r}: {dist}({params}) is refused by PyMC ({type(error).__name__}: {error})"
            ) from None
        if _is_scale(name) and np.any(np.isfinite(below)):
            raise DataError(
                f"{where} for {name!r}: {name} is a scale (> 0) but {dist} allows negative values; use HalfNormal, Exponential, HalfStudentT, ..."
            )


@dataclass(frozen=True)
class NamedPriors:
    """The prior of every parameter from one of the project's named sets (:func:`funnel.priors.describe_priors`):
    complete and known to be valid, so taken as it is (a user's mapping is always checked)."""

    specs: Mapping[str, Mapping[str, Any]]


def resolve_priors(
    design: Design, family: str, priors: str | Mapping[str, Any] | NamedPriors = "auto", naming: Naming = BAMBI
) -> dict[str, dict[str, Any]]:
    """``auto``, with a user's priors (a mapping parameter -> spec, checked by :func:`check_priors`) replacing the
    auto one of each parameter they name; or a named set (:class:`NamedPriors`), which must name every parameter."""
    if isinstance(priors, NamedPriors):
        wanted = list(parameters(design, family, naming))
        if sorted(priors.specs) != sorted(wanted):
            raise ValueError(f"a named prior set gives {', '.join(priors.specs)}; the model has {', '.join(wanted)}")
        return {name: dict(spec) for name, spec in priors.specs.items()}
    chosen = auto_priors(design, family, naming)
    if isinstance(priors, str):
        if priors != "auto":
            raise DataError(
                f"dataset {design.dataset!r}: unknown prior set {priors!r} for a formula model; use 'auto' or a mapping of priors"
            )
        return chosen
    check_priors(priors, design, family, naming)
    chosen.update({name: dict(spec) for name, spec in priors.items()})
    return chosen


def masks(design: Design, centering: Any, naming: Naming = BAMBI) -> dict[str, np.ndarray]:
    """One bool per level of each group-specific term's factor (True = centered) from ``centering``: one bool for
    every term, or a mapping from a term's (effect's) name to a bool or bools per level (a
    :class:`~funnel.forms.Centering` too); terms a mapping leaves out are non-centered (Bambi's default).
    Keyed by the effect's name."""
    mapping = getattr(centering, "centered", centering)
    out: dict[str, np.ndarray] = {}
    for term in design.group:
        name = naming.var(term.name)
        value = mapping if isinstance(mapping, (bool, np.bool_)) else (mapping or {}).get(name, False)
        out[name] = np.broadcast_to(np.asarray(value, dtype=bool), (term.n_levels,)).copy()
    if isinstance(mapping, Mapping):
        unknown = [name for name in mapping if name not in out]
        if unknown:
            raise ValueError(f"centering names term(s) {', '.join(unknown)}; the design's terms are {', '.join(out)}")
    return out


# --- the terms ----------------------------------------------------------------------------------------------


def common_term(term: CommonTerm, beta: Any) -> Any:
    """A common term's contribution to eta: its coefficient(s) times its column(s) of X."""
    return term.matrix @ beta if common_dim(term) else beta * term.matrix[:, 0]


@dataclass(frozen=True)
class Effects:
    """A group-specific term's sampled parts: all of them (centered) or its offsets (non-centered) or both (a
    mix), before :func:`join_effects` makes the term's effects from them."""

    centered: Any
    offset: Any


def _tail(term: GroupTerm) -> tuple[int, ...]:
    """The shape of one level's effects: () for one predictor column, (columns,) for several."""
    return (len(term.columns),) if len(term.columns) > 1 else ()


def sample_effects(names: TermNames, term: GroupTerm, mean: Any, sigma: Any, mask: np.ndarray) -> Effects:
    """The term's sampled variables: centered levels ~ Normal(mean, sigma) (mean None: 0), the others' offsets
    ~ Normal(0, 1)."""
    import pymc as pm

    dims = (names.level_dim, names.column_dim) if names.column_dim else names.level_dim
    tail, mean = _tail(term), 0.0 if mean is None else mean
    if mask.all():
        return Effects(pm.Normal(names.effect, mu=mean, sigma=sigma, dims=dims), None)
    if not mask.any():
        return Effects(None, pm.Normal(names.offset, mu=0.0, sigma=1.0, dims=dims))
    return Effects(
        pm.Normal(names.centered, mu=mean, sigma=sigma, shape=(int(mask.sum()), *tail)),
        pm.Normal(names.offset, mu=0.0, sigma=1.0, shape=(int((~mask).sum()), *tail)),
    )


def join_effects(names: TermNames, term: GroupTerm, parts: Effects, mean: Any, sigma: Any, mask: np.ndarray) -> Any:
    """The term's effects from its parts: the centered variable itself, or ``mean + offset * sigma`` (a
    deterministic), or both placed at their levels."""
    import pymc as pm
    import pytensor.tensor as pt

    if parts.offset is None:
        return parts.centered
    dims = (names.level_dim, names.column_dim) if names.column_dim else names.level_dim
    shifted = parts.offset * sigma if mean is None else mean + parts.offset * sigma
    if parts.centered is None:
        return pm.Deterministic(names.effect, shifted, dims=dims)
    value = pt.zeros((term.n_levels, *_tail(term)))
    value = pt.set_subtensor(value[np.flatnonzero(mask)], parts.centered)
    value = pt.set_subtensor(value[np.flatnonzero(~mask)], shifted)
    return pm.Deterministic(names.effect, value, dims=dims)


def intercept_term(term: GroupTerm, effects: Any) -> Any:
    """``1|g``: each row gets its level's intercept."""
    return effects[term.index]


def slope_term(term: GroupTerm, effects: Any) -> Any:
    """``x|g``: each row gets its level's slope times its x."""
    return effects[term.index] * term.predictor[:, 0]


def categoric_term(term: GroupTerm, effects: Any) -> Any:
    """``period|g``: each row gets its level's effects dotted with its columns of the predictor."""
    return (effects[term.index] * term.predictor).sum(axis=-1)


TERM_KINDS = {"intercept": intercept_term, "numeric": slope_term, "categoric": categoric_term}


def group_term(term: GroupTerm, effects: Any) -> Any:
    """A group-specific term's contribution to eta, by its kind."""
    kind = term.kind if term.kind in TERM_KINDS else ("categoric" if len(term.columns) > 1 else "numeric")
    return TERM_KINDS[kind](term, effects)


def likelihood(design: Design, family: str, eta: Any, observed: Any, residual: Any) -> Any:
    """The outcome given the linear predictor, through the family's canonical link."""
    import pymc as pm

    if family == "gaussian":
        sigma = design.se if design.se is not None else residual
        return pm.Normal(OUTCOME, mu=eta, sigma=sigma, observed=observed)
    if family == "bernoulli":
        return pm.Bernoulli(OUTCOME, logit_p=eta, observed=observed)
    if family == "binomial":
        return pm.Binomial(OUTCOME, n=design.trials.astype(np.int64), logit_p=eta, observed=observed)
    return pm.Poisson(OUTCOME, mu=pm.math.exp(eta), observed=observed)


def build_glm(
    design: Design,
    family: str = "gaussian",
    centering: Any = False,
    priors: str | Mapping[str, Any] | NamedPriors = "auto",
    mutable_y: bool = False,
    naming: Naming = BAMBI,
) -> Any:
    """The PyMC model of ``design`` (see the module's docstring); ``centering`` as :func:`masks` reads it;
    ``mutable_y`` holds the outcome in ``pm.Data`` (:data:`Y_DATA`), as funnel.models does for SBC; ``naming``
    renames its variables and dimensions (:class:`Naming`).

    The hyperparameters come first (each common coefficient followed by the scale of the group-specific term
    it anchors, then the other scales, then ``eps``), then each term's sampled effects, then the
    deterministics: the order in which the samplers see the variables. The model keeps the masks as
    ``model.centering`` (effect name -> bools per level) and its :class:`Structure` as ``model.structure``."""
    import pymc as pm

    check_family(design, family)
    chosen = resolve_priors(design, family, priors, naming)
    centered = masks(design, centering, naming)
    anchored = anchors(design)
    coords: dict[str, Any] = {}
    for term in design.common:
        if common_dim(term):
            coords[common_dim(term)] = list(term.columns)
    for term in design.group:
        names = term_names(term, naming)
        if coords.setdefault(names.level_dim, list(term.levels)) != list(term.levels):
            raise ValueError(f"two terms of the factor {term.factor!r} have different levels")
        if names.column_dim:
            coords[names.column_dim] = list(term.columns)
    with pm.Model(coords=coords) as model:
        betas: dict[str, Any] = {}
        sigmas: dict[str, Any] = {}
        residual = None
        for item in prior_order(design, family):
            name = parameter_name(item, naming)
            if item is None:
                residual = prior_variable(name, chosen[name])
                continue
            dim = common_dim(item) if isinstance(item, CommonTerm) else term_names(item, naming).column_dim
            variable = prior_variable(name, chosen[name], dims=dim) if dim else prior_variable(name, chosen[name])
            (betas if isinstance(item, CommonTerm) else sigmas)[item.name] = variable
        # Each term's effects: every term's sampled variables first, then the deterministics made from them.
        means = {term.name: betas.get(anchored.get(term.name, "")) for term in design.group}  # None: zero-mean
        sampled = {
            term.name: sample_effects(
                term_names(term, naming), term, means[term.name], sigmas[term.name], centered[naming.var(term.name)]
            )
            for term in design.group
        }
        parts = [common_term(c, betas[c.name]) for c in design.common if c.name not in anchored.values()]
        for term in design.group:
            effects = join_effects(
                term_names(term, naming),
                term,
                sampled[term.name],
                means[term.name],
                sigmas[term.name],
                centered[naming.var(term.name)],
            )
            parts.append(group_term(term, effects))
        eta = parts[0] if parts else np.zeros(design.n_rows)
        for part in parts[1:]:
            eta = eta + part
        y = design.y.astype(np.int64) if family != "gaussian" else design.y
        observed = pm.Data(Y_DATA, y) if mutable_y else y
        likelihood(design, family, eta, observed, residual)
    model.centering = centered
    model.structure = structure(design, family, naming)
    return model
