"""Model graphs, and the log density term by term (issue #15) for both forms and every prior set.

The reference log density is written here with SciPy, independently of
``funnel.models`` and ``funnel.priors.describe_priors``. PyMC samples the
scales (``sigma_a``, ``sigma_b``, ``eps``) on the log scale: its value variables
are ``<name>_log__``. The comparison evaluates PyMC at the fixed point mapped to
that space and checks both ``compile_logp(jacobian=False)`` (equal to the SciPy
sum on the constrained scale) and ``compile_logp()`` (the SciPy sum plus the
log-Jacobian ``log sigma_a + log sigma_b + log eps``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import VALUE_MODE as MODE
from funnel.datasets import RESERVED_NAMES, ModelData, model_data
from funnel.errors import DataError
from funnel.models import HYPERPARAMETERS, MODELS, VARIABLE_NAMES, build_model, group_dim
from funnel.priors import PRIORS, describe_priors
from scipy import stats

pm = pytest.importorskip("pymc")

# --------------------------------------------------------------------------- a hand-made dataset
# Three subjects of unequal size (308: 4 rows, 309: 3, 310: 2), deliberately out of
# order in the rows, with integer labels that must become text. x and y are chosen
# so that mean(y) = 10, sd(y) = 3 and sd(x) = 2 exactly (sample sd, ddof 1).
COLUMNS = {"group": "Subject", "x": "Days", "y": "Reaction"}
TOY = pd.DataFrame(
    {
        "Subject": [309, 308, 310, 308, 309, 308, 310, 309, 308],
        "Days": [-1.0, -1.0, -1.0, 3.0, 1.0, -1.0, 3.0, 3.0, 3.0],
        "Reaction": [7.0, 5.0, 9.0, 11.0, 10.0, 15.0, 11.0, 13.0, 9.0],
    }
)
LABELS = ("308", "309", "310")
RECORD = {"dataset": "toy", "track_group": "310", "bias_groups": ["308"], "sigma_b_small": 0.15}

# A fixed, non-trivial point (not the initial point): every group different, offsets
# nonzero, mu_a != mu_b and sigma_a != sigma_b (so a swapped mean or scale shows),
# x != 1 - x in every row (so a flipped predictor shows).
HYPER = {"mu_a": 9.2, "sigma_a": 1.7, "mu_b": -0.4, "sigma_b": 0.6, "eps": 2.3}
GROUP_VALUES = {
    "a": {"308": 8.1, "309": 10.6, "310": 9.5},
    "b": {"308": 0.3, "309": -1.1, "310": 0.8},
    "a_offset": {"308": -0.65, "309": 0.8, "310": 0.2},
    "b_offset": {"308": 1.2, "309": -0.5, "310": 2.0},
}
SCALES = ("sigma_a", "sigma_b", "eps")
GROUP_VARS = {"centered": ("a", "b"), "noncentered": ("a_offset", "b_offset")}
# The two whole forms, checked term by term here; a mixed form (partial) in tests/test_forms.py.
WHOLE = tuple(GROUP_VARS)


@pytest.fixture(scope="module")
def toy() -> ModelData:
    return model_data(TOY, COLUMNS, RECORD)


def test_toy_table_has_the_round_moments_the_auto_priors_are_checked_with():
    assert np.mean(TOY["Reaction"]) == pytest.approx(10.0, abs=1e-12)
    assert np.std(TOY["Reaction"], ddof=1) == pytest.approx(3.0, abs=1e-12)
    assert np.std(TOY["Days"], ddof=1) == pytest.approx(2.0, abs=1e-12)
    assert TOY.groupby("Subject").size().tolist() == [4, 3, 2]


# --------------------------------------------------------------------------- the reference, in SciPy
def reference_priors(priors: str, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Each hyperparameter's prior as a frozen SciPy distribution, written from the documentation."""
    if priors == "blog":  # the 2017 blog post: Normal(0, 100^2), HalfCauchy(5)
        wide, scale = stats.norm(loc=0.0, scale=100.0**2), stats.halfcauchy(scale=5.0)
        return {"mu_a": wide, "sigma_a": scale, "mu_b": wide, "sigma_b": scale, "eps": scale}
    if priors == "weakly_informative":  # posteriordb: Normal(0, 10), HalfNormal(1)
        loc, scale = stats.norm(loc=0.0, scale=10.0), stats.halfnorm(scale=1.0)
        return {"mu_a": loc, "sigma_a": scale, "mu_b": loc, "sigma_b": scale, "eps": scale}
    if priors == "auto":
        m_y, s_y, s_x = np.mean(y), np.std(y, ddof=1), np.std(x, ddof=1)
        return {
            "mu_a": stats.norm(loc=m_y, scale=2.5 * s_y),
            "sigma_a": stats.halfnorm(scale=s_y),
            "mu_b": stats.norm(loc=0.0, scale=2.5 * s_y / s_x),
            "sigma_b": stats.halfnorm(scale=s_y / s_x),
            "eps": stats.halfnorm(scale=s_y),
        }
    raise AssertionError(priors)


def reference_terms(form: str, priors: str, table: pd.DataFrame = TOY) -> dict[str, float]:
    """log p of the fixed point, one term per random variable, plus the non-centered deterministics.

    Rows are matched to groups by their label in the raw table, not through ``group_idx``.
    """
    labels = table[COLUMNS["group"]].astype(str).to_numpy()
    x, y = table[COLUMNS["x"]].to_numpy(float), table[COLUMNS["y"]].to_numpy(float)
    prior = reference_priors(priors, x, y)
    terms = {name: float(prior[name].logpdf(HYPER[name])) for name in HYPERPARAMETERS}
    if form == "centered":
        a, b = GROUP_VALUES["a"], GROUP_VALUES["b"]
        terms["a"] = float(sum(stats.norm(HYPER["mu_a"], HYPER["sigma_a"]).logpdf(v) for v in a.values()))
        terms["b"] = float(sum(stats.norm(HYPER["mu_b"], HYPER["sigma_b"]).logpdf(v) for v in b.values()))
    else:
        a_off, b_off = GROUP_VALUES["a_offset"], GROUP_VALUES["b_offset"]
        terms["a_offset"] = float(sum(stats.norm(0, 1).logpdf(v) for v in a_off.values()))
        terms["b_offset"] = float(sum(stats.norm(0, 1).logpdf(v) for v in b_off.values()))
        a = {g: HYPER["mu_a"] + HYPER["sigma_a"] * v for g, v in a_off.items()}
        b = {g: HYPER["mu_b"] + HYPER["sigma_b"] * v for g, v in b_off.items()}
        for g in LABELS:  # deterministics, compared too
            terms[f"a[{g}]"], terms[f"b[{g}]"] = a[g], b[g]
    mean = np.array([a[g] for g in labels]) + np.array([b[g] for g in labels]) * x
    terms["y"] = float(stats.norm(mean, HYPER["eps"]).logpdf(y).sum())
    return terms


def value_point(model: Any, form: str) -> dict[str, np.ndarray]:
    """The fixed point in PyMC's value space: the scales enter as log(sigma) (``<name>_log__``)."""
    dim = group_dim_of(model)
    expected = {"mu_a", "mu_b", *(f"{s}_log__" for s in SCALES), *GROUP_VARS[form]}
    assert {v.name for v in model.value_vars} == expected, "PyMC's value transforms changed: fix value_point"
    point = {name: np.asarray(HYPER[name]) for name in ("mu_a", "mu_b")}
    point.update({f"{s}_log__": np.log(np.asarray(HYPER[s])) for s in SCALES})
    for name in GROUP_VARS[form]:  # in the model's own label order
        point[name] = np.array([GROUP_VALUES[name][g] for g in model.coords[dim]])
    return point


def group_dim_of(model: Any) -> str:
    (dim,) = model.named_vars_to_dims["a"]
    return dim


def model_terms(model: Any, form: str) -> dict[str, float]:
    """PyMC's log p of the fixed point per random variable (no Jacobian), and the deterministics."""
    point = value_point(model, form)
    rvs = [*model.free_RVs, *model.observed_RVs]
    logps = [model.logp(vars=[rv], jacobian=False) for rv in rvs]
    fn = model.compile_fn(logps, inputs=model.value_vars, on_unused_input="ignore", mode=MODE)
    terms = {rv.name: float(v) for rv, v in zip(rvs, fn(point))}
    if form == "noncentered":
        a_b = model.replace_rvs_by_values([model["a"], model["b"]])  # in terms of the value variables
        a, b = model.compile_fn(a_b, inputs=model.value_vars, on_unused_input="ignore", mode=MODE)(point)
        for i, g in enumerate(model.coords[group_dim_of(model)]):
            terms[f"a[{g}]"], terms[f"b[{g}]"] = float(a[i]), float(b[i])
    return terms


# PyTensor stores a Python float that float32 represents exactly (7.5, 10000.0) as a float32
# constant, so log(prior scale) is computed in float32: about 1e-7 off per prior term here. A
# planted bug moves a term by far more (the mutants below: 0.1 or more).
ABS_TOL = 1e-6


def logp_mismatches(model: Any, form: str, priors: str) -> list[str]:
    """Where ``model`` disagrees with the SciPy reference at the fixed point (empty: it agrees).

    Judges the real and the mutant models alike: every term, the deterministics, the total
    of ``compile_logp(jacobian=False)`` and that of ``compile_logp()`` (plus the log-Jacobian).
    """
    ref = reference_terms(form, priors)
    ours = model_terms(model, form)
    if set(ours) != set(ref):
        return [f"terms {sorted(ours)} != {sorted(ref)}"]
    close = lambda u, v: u == pytest.approx(v, rel=1e-12, abs=ABS_TOL)  # noqa: E731
    bad = [f"{k}: pymc {ours[k]!r} vs scipy {ref[k]!r}" for k in ref if not close(ours[k], ref[k])]
    point = value_point(model, form)
    random_terms = [k for k in ref if "[" not in k]
    total = sum(ref[k] for k in random_terms)
    log_jacobian = sum(np.log(HYPER[s]) for s in SCALES)  # d sigma / d log(sigma) = sigma
    if not close(float(model.compile_logp(jacobian=False, mode=MODE)(point)), total):
        bad.append("total without Jacobian")
    if not close(float(model.compile_logp(mode=MODE)(point)), total + log_jacobian):
        bad.append("total with Jacobian")
    return bad


# --------------------------------------------------------------------------- mutants
# Each bug and the term it must show up in (besides both totals).
MUTANT_TERM = {
    "centered b with scale sigma_a": "b",
    "non-centered b centred on mu_a": "b[308]",
    "likelihood with 1 - x": "y",
}


def mirror_model(data: ModelData, form: str, priors: str, bug: str | None = None) -> Any:
    """``build_model`` written out again, with at most one planted bug (None: none)."""
    spec = describe_priors(priors, data)

    def prior(name: str) -> Any:
        params = {k: v for k, v in spec[name].items() if k != "dist"}
        return getattr(pm, spec[name]["dist"])(name, **params)

    dim = data.group_dim
    with pm.Model(coords={dim: list(data.groups)}) as model:
        mu_a, sigma_a, mu_b, sigma_b, eps = (prior(name) for name in HYPERPARAMETERS)
        if form == "centered":
            a = pm.Normal("a", mu=mu_a, sigma=sigma_a, dims=dim)
            b_scale = sigma_a if bug == "centered b with scale sigma_a" else sigma_b
            b = pm.Normal("b", mu=mu_b, sigma=b_scale, dims=dim)
        else:
            a_offset = pm.Normal("a_offset", mu=0.0, sigma=1.0, dims=dim)
            b_offset = pm.Normal("b_offset", mu=0.0, sigma=1.0, dims=dim)
            a = pm.Deterministic("a", mu_a + a_offset * sigma_a, dims=dim)
            b_centre = mu_a if bug == "non-centered b centred on mu_a" else mu_b
            b = pm.Deterministic("b", b_centre + b_offset * sigma_b, dims=dim)
        x = 1 - data.x if bug == "likelihood with 1 - x" else data.x
        pm.Normal("y", mu=a[data.group_idx] + b[data.group_idx] * x, sigma=eps, observed=data.y)
    return model


@pytest.mark.parametrize("priors", PRIORS)
@pytest.mark.parametrize("form", WHOLE)
def test_log_density_term_by_term(toy, form, priors):
    """build_model's log density at a fixed point is the SciPy sum of prior, group and likelihood terms."""
    assert logp_mismatches(build_model(toy, form, priors), form, priors) == []


@pytest.mark.parametrize("form", WHOLE)
def test_the_mirror_without_a_bug_passes(toy, form):
    """The mutants differ from a faithful mirror by their bug only."""
    assert logp_mismatches(mirror_model(toy, form, "auto"), form, "auto") == []


@pytest.mark.parametrize("priors", ["blog", "auto"])
@pytest.mark.parametrize(
    ("bug", "form"),
    [
        ("centered b with scale sigma_a", "centered"),
        ("non-centered b centred on mu_a", "noncentered"),
        ("likelihood with 1 - x", "centered"),
        ("likelihood with 1 - x", "noncentered"),
    ],
)
def test_the_term_by_term_check_catches_mutants(toy, bug, form, priors):
    """Bugs that once went unnoticed: the same comparison that passes build_model fails each."""
    mismatches = logp_mismatches(mirror_model(toy, form, priors, bug), form, priors)
    term = MUTANT_TERM[bug]
    assert any(m.startswith(f"{term}:") for m in mismatches), mismatches
    assert "total without Jacobian" in mismatches and "total with Jacobian" in mismatches


def test_noncentered_deterministics_are_mu_plus_sigma_times_offset(toy):
    terms = model_terms(build_model(toy, "noncentered", "auto"), "noncentered")
    # By hand: mu_a = 9.2, sigma_a = 1.7, mu_b = -0.4, sigma_b = 0.6 at the fixed point.
    expected_a = {"308": 9.2 - 1.7 * 0.65, "309": 9.2 + 1.7 * 0.8, "310": 9.2 + 1.7 * 0.2}
    expected_b = {"308": -0.4 + 0.6 * 1.2, "309": -0.4 - 0.6 * 0.5, "310": -0.4 + 0.6 * 2.0}
    for g in LABELS:
        assert terms[f"a[{g}]"] == pytest.approx(expected_a[g], rel=1e-12)
        assert terms[f"b[{g}]"] == pytest.approx(expected_b[g], rel=1e-12)


def test_the_auto_priors_are_the_documented_formulas_on_round_moments(toy):
    """m_y = 10, s_y = 3, s_x = 2: mu_a ~ N(10, 7.5), sigma_a ~ HN(3), mu_b ~ N(0, 3.75), sigma_b ~ HN(1.5), eps ~ HN(3)."""
    literal = {
        "mu_a": stats.norm(loc=10.0, scale=7.5),
        "sigma_a": stats.halfnorm(scale=3.0),
        "mu_b": stats.norm(loc=0.0, scale=3.75),
        "sigma_b": stats.halfnorm(scale=1.5),
        "eps": stats.halfnorm(scale=3.0),
    }
    formula = reference_priors("auto", toy.x, toy.y)
    for name, dist in literal.items():
        assert formula[name].kwds == pytest.approx(dist.kwds, rel=1e-12)
    model = build_model(toy, "centered", "auto")
    for name, dist in literal.items():
        value = HYPER[name]
        assert pm.logp(model[name], value).eval() == pytest.approx(dist.logpdf(value), rel=1e-12, abs=ABS_TOL)
    assert describe_priors("auto", toy) == {
        "mu_a": {"dist": "Normal", "mu": pytest.approx(10.0), "sigma": pytest.approx(7.5)},
        "sigma_a": {"dist": "HalfNormal", "sigma": pytest.approx(3.0)},
        "mu_b": {"dist": "Normal", "mu": 0.0, "sigma": pytest.approx(3.75)},
        "sigma_b": {"dist": "HalfNormal", "sigma": pytest.approx(1.5)},
        "eps": {"dist": "HalfNormal", "sigma": pytest.approx(3.0)},
    }


def test_auto_priors_scale_with_the_data(toy):
    """Measuring x in other units rescales the slope priors only; shifting y moves mu_a only."""
    rescaled = ModelData(**{**toy.__dict__, "x": toy.x * 10.0, "y": toy.y + 5.0})
    before, after = describe_priors("auto", toy), describe_priors("auto", rescaled)
    assert after["mu_b"]["sigma"] == pytest.approx(before["mu_b"]["sigma"] / 10.0)
    assert after["sigma_b"]["sigma"] == pytest.approx(before["sigma_b"]["sigma"] / 10.0)
    assert after["mu_a"]["mu"] == pytest.approx(15.0)
    assert after["sigma_a"] == before["sigma_a"] and after["eps"] == before["eps"]


@pytest.mark.parametrize("constant", ["x", "y"])
def test_auto_priors_need_spread(toy, constant):
    flat = ModelData(**{**toy.__dict__, constant: np.full_like(getattr(toy, constant), 2.0)})
    with pytest.raises(DataError, match=r"priors 'auto' need sd\(y\) > 0 and sd\(x\) > 0"):
        build_model(flat, "centered", "auto")


def test_replicating_rows_multiplies_the_likelihood_only(toy):
    """k copies of every row: the likelihood term is k times as large, the other terms unchanged."""
    single = model_terms(build_model(toy, "centered", "blog"), "centered")
    tripled = model_terms(build_model(toy.replicate(3), "centered", "blog"), "centered")
    assert tripled["y"] == pytest.approx(3 * single["y"], rel=1e-12)
    assert {k: v for k, v in tripled.items() if k != "y"} == pytest.approx(
        {k: v for k, v in single.items() if k != "y"}, rel=1e-12
    )


# --------------------------------------------------------------------------- graph structure
@pytest.mark.parametrize("form", WHOLE)
def test_variables_shapes_and_group_dimension(toy, form):
    model = build_model(toy, form)
    free = {rv.name for rv in model.free_RVs}
    assert free == set(HYPERPARAMETERS) | set(GROUP_VARS[form])
    assert {d.name for d in model.deterministics} == (set() if form == "centered" else {"a", "b"})
    # The group dimension is named after the group column, labelled with its values as text.
    assert model.coords == {"Subject": LABELS}
    for name in ("a", "b", *GROUP_VARS[form]):
        assert model.named_vars_to_dims[name] == ("Subject",)
    point = model.initial_point()
    for name in GROUP_VARS[form]:
        assert point[name].shape == (3,)
    assert [rv.name for rv in model.observed_RVs] == ["y"]


def test_model_data_labels_groups_as_text(toy):
    assert toy.group_dim == "Subject" and toy.groups == LABELS
    assert all(isinstance(g, str) for g in toy.groups)
    # a[i] belongs to groups[i]: every row's index points at its own label.
    assert [toy.groups[i] for i in toy.group_idx] == TOY["Subject"].astype(str).tolist()
    np.testing.assert_array_equal(toy.x, TOY["Days"])
    np.testing.assert_array_equal(toy.y, TOY["Reaction"])
    assert (toy.x_name, toy.y_name, toy.dataset) == ("Days", "Reaction", "toy")
    assert (toy.track_group, toy.bias_groups, toy.sigma_b_small) == ("310", ("308",), 0.15)


def test_group_dim_of_a_posterior():
    b = xr.DataArray(np.zeros((2, 3, 3)), dims=("chain", "draw", "Subject"), coords={"Subject": list(LABELS)})
    assert group_dim(xr.Dataset({"b": b})) == "Subject"
    two = xr.DataArray(np.zeros((2, 3, 3, 2)), dims=("chain", "draw", "Subject", "Day"))
    with pytest.raises(ValueError, match="expected chain, draw and one group dimension"):
        group_dim(xr.Dataset({"b": two}))


@pytest.mark.parametrize(
    ("priors", "mu_logpdf", "scale_logpdf"),
    [
        ("blog", stats.norm(0, 100**2).logpdf, stats.halfcauchy(scale=5).logpdf),
        ("weakly_informative", stats.norm(0, 10).logpdf, stats.halfnorm(scale=1).logpdf),
    ],
)
def test_fixed_prior_sets(toy, priors, mu_logpdf, scale_logpdf):
    model = build_model(toy, "centered", priors)
    for name in ("mu_a", "mu_b"):
        # ~1e-8 apart: PyTensor keeps 10000.0, 5.0, 10.0, 1.0 as float32 constants (see ABS_TOL).
        assert pm.logp(model[name], 0.7).eval() == pytest.approx(mu_logpdf(0.7), rel=1e-7)
    for name in SCALES:
        assert pm.logp(model[name], 1.3).eval() == pytest.approx(scale_logpdf(1.3), rel=1e-7)


def test_bad_arguments_are_named(toy):
    with pytest.raises(ValueError, match="unknown model 'funnel'"):
        build_model(toy, "funnel")
    with pytest.raises(ValueError, match="unknown prior set 'flat'"):
        build_model(toy, "centered", "flat")


@pytest.fixture(scope="module")
def radon_data(tmp_path_factory) -> ModelData:
    from funnel import radon

    dest = tmp_path_factory.mktemp("radon") / "src"
    radon.acquire(radon.SourceSpec(source="embedded"), dest, log=lambda m: None)
    table = radon.clean_source(dest, "arm")[0]
    return model_data(table, radon.COLUMNS, {"dataset": "radon", "track_group": "TRAVERSE"})


def test_real_data_coordinates(radon_data):
    model = build_model(radon_data, "noncentered", "auto")
    coords = model.coords["county"]
    assert len(coords) == 85 and coords[75] == "TRAVERSE"
    assert list(coords) == sorted(coords)
    assert model.named_vars_to_dims["b"] == ("county",)
    # TRAVERSE's rows are the ones indexed 75.
    assert int((radon_data.group_idx == 75).sum()) == 4


@pytest.mark.parametrize("mutable_y", [False, True])
@pytest.mark.parametrize("form", MODELS)
def test_the_reserved_group_names_are_the_models_own_variable_names(form, mutable_y):
    """A group column may not take a name the model gives a variable: the list is the model's, not a copy."""
    data = ModelData("g", ("u", "v", "w"), np.array([0, 1, 2, 0]), np.array([0.0, 1, 0, 1]), np.array([1.0, 2, 3, 4]))
    model = build_model(data, form, "weakly_informative", mutable_y=mutable_y)
    names = {v.name for v in [*model.free_RVs, *model.deterministics, *model.observed_RVs, *model.data_vars]}
    assert names <= set(VARIABLE_NAMES)
    # the other forms' (offsets, a mixed form's centered parts), or SBC's
    assert set(VARIABLE_NAMES) - names <= {"a_offset", "b_offset", "a_centered", "b_centered", "y_obs"}
    assert RESERVED_NAMES == {"chain", "draw", *VARIABLE_NAMES}
