"""Model graphs: variables, shapes, coordinates and priors of both forms and prior sets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from funnel.models import HYPERPARAMETERS, build_model, coords_of
from scipy import stats

pm = pytest.importorskip("pymc")


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    # Three counties, deliberately out of alphabetical order in the rows.
    return pd.DataFrame(
        {
            "county": ["BETA", "ALPHA", "GAMMA", "ALPHA", "BETA"],
            "county_idx": [1, 0, 2, 0, 1],
            "floor": [0, 1, 0, 0, 1],
            "log_radon": [1.0, 0.5, 2.0, 1.2, 0.1],
        }
    )


@pytest.mark.parametrize("form", ["centered", "noncentered"])
def test_variables_and_shapes(table, form):
    model = build_model(table, form)
    free = {rv.name for rv in model.free_RVs}
    group = {"a", "b"} if form == "centered" else {"a_offset", "b_offset"}
    assert free == set(HYPERPARAMETERS) | group
    assert {d.name for d in model.deterministics} == (set() if form == "centered" else {"a", "b"})
    assert model.coords["county"] == ("ALPHA", "BETA", "GAMMA")
    assert model.named_vars_to_dims["a"] == ("county",)
    point = model.initial_point()
    for name in group:
        assert point[name].shape == (3,)
    assert [rv.name for rv in model.observed_RVs] == ["y"]


def test_noncentered_deterministics_scale_offsets(table):
    model = build_model(table, "noncentered")
    import pytensor

    (a_of_values,) = model.replace_rvs_by_values([model["a"]])
    a = pytensor.function(model.value_vars, a_of_values, on_unused_input="ignore")
    inputs = {
        "mu_a": np.array(1.0),
        "sigma_a_log__": np.log(np.array(2.0)),
        "mu_b": np.array(0.0),
        "sigma_b_log__": np.array(0.0),
        "eps_log__": np.array(0.0),
        "a_offset": np.array([0.5, -1.0, 0.0]),
        "b_offset": np.zeros(3),
    }
    value = a(*(inputs[v.name] for v in model.value_vars))
    np.testing.assert_allclose(value, [2.0, -1.0, 1.0])


@pytest.mark.parametrize(
    ("priors", "mu_logpdf", "scale_logpdf"),
    [
        ("blog", stats.norm(0, 100**2).logpdf, stats.halfcauchy(scale=5).logpdf),
        ("weakly_informative", stats.norm(0, 10).logpdf, stats.halfnorm(scale=1).logpdf),
    ],
)
def test_prior_sets(table, priors, mu_logpdf, scale_logpdf):
    model = build_model(table, "centered", priors)
    for name in ("mu_a", "mu_b"):
        # PyTensor's compiled log-densities agree with SciPy's to ~1e-8 (its C math).
        assert pm.logp(model[name], 0.7).eval() == pytest.approx(mu_logpdf(0.7), rel=1e-7)
    for name in ("sigma_a", "sigma_b", "eps"):
        assert pm.logp(model[name], 1.3).eval() == pytest.approx(scale_logpdf(1.3), rel=1e-7)


def test_bad_arguments_are_named(table):
    with pytest.raises(ValueError, match="unknown model 'funnel'"):
        build_model(table, "funnel")
    with pytest.raises(ValueError, match="unknown prior set 'flat'"):
        build_model(table, "centered", "flat")
    with pytest.raises(ValueError, match="no column 'floor'"):
        build_model(table.drop(columns="floor"), "centered")


def test_real_data_coordinates(shared_radon, tmp_path):
    from funnel import data

    table = data.clean_raw(shared_radon / "srrs2.dat", shared_radon / "cty.dat", "arm")
    coords = coords_of(table)["county"]
    assert len(coords) == 85 and coords[75] == "TRAVERSE"
