"""The SBC library (funnel.sbc): simulation seeds, simulation from the model, ranks, uniformity."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from funnel.datasets import ModelData
from funnel.sbc import log_likelihood, ranks, simulate, simulation_seed, thinning, uniformity
from scipy.stats import norm


def design(groups: int = 40, rows: int = 15) -> ModelData:
    rng = np.random.default_rng(3)
    idx = np.repeat(np.arange(groups), rows)
    return ModelData(
        group_dim="site",
        groups=tuple(f"g{i:02d}" for i in range(groups)),
        group_idx=idx,
        x=rng.normal(size=idx.size),
        y=np.zeros(idx.size),
        dataset="toy",
        track_group="g03",
    )


def test_simulation_seeds_depend_on_dataset_and_index_only():
    assert simulation_seed("radon", 7) == simulation_seed("radon", 7)
    seeds = {simulation_seed("radon", i) for i in range(1000)}
    assert len(seeds) == 1000 and all(0 <= s < 2**63 for s in seeds)
    assert simulation_seed("radon", 7) != simulation_seed("sleepstudy", 7)
    with pytest.raises(ValueError, match="index"):
        simulation_seed("radon", -1)


@pytest.mark.slow  # builds PyMC models
def test_simulate_draws_theta_then_y_from_the_model_on_the_design():
    data = design()
    truth, y = simulate(data, "weakly_informative", seed=11)
    again, y_again = simulate(data, "weakly_informative", seed=11)
    np.testing.assert_array_equal(y, y_again)
    assert set(truth) == {"mu_a", "sigma_a", "mu_b", "sigma_b", "eps", "a", "b"}
    assert truth["a"].shape == truth["b"].shape == (40,) and y.shape == (600,)
    # y = a[g] + b[g] * x + eps * noise: the standardised residuals are N(0, 1) (600 of them).
    z = (y - truth["a"][data.group_idx] - truth["b"][data.group_idx] * data.x) / truth["eps"]
    assert abs(z.mean()) < 4 / np.sqrt(z.size) and abs(z.std() - 1) < 0.15
    # a ~ N(mu_a, sigma_a) over the 40 groups, b ~ N(mu_b, sigma_b).
    for v in ("a", "b"):
        za = (truth[v] - truth[f"mu_{v}"]) / truth[f"sigma_{v}"]
        assert abs(za.mean()) < 4 / np.sqrt(40) and 0.6 < za.std() < 1.4, v
    other, _ = simulate(data, "weakly_informative", seed=12)
    assert other["mu_a"] != truth["mu_a"]


def test_thinning_keeps_about_one_draw_per_effective_draw():
    assert thinning(4000, ess=400, rank_draws=100) == 10
    assert thinning(4000, ess=4000, rank_draws=100) == 1
    assert thinning(4000, ess=50, rank_draws=100) == 40  # never fewer than rank_draws kept
    assert thinning(4000, ess=0.0, rank_draws=100) == 40


def test_log_likelihood_is_the_sum_of_normal_log_densities():
    data = design(groups=3, rows=4)
    data = data.with_y(np.arange(12, dtype=float) / 10)
    a, b, eps = np.array([[0.1, 0.2, 0.3]]), np.array([[1.0, -1.0, 0.5]]), np.array([0.7])
    mu = a[0, data.group_idx] + b[0, data.group_idx] * data.x
    assert log_likelihood(data, a, b, eps)[0] == pytest.approx(norm.logpdf(data.y, mu, 0.7).sum())


def _posterior(data: ModelData, values: np.ndarray) -> xr.Dataset:
    """Two chains of 50 draws; every scalar takes ``values`` (chain-major), a and b too."""
    chains = values.reshape(2, 50)
    groups = np.repeat(chains[..., None], data.n_groups, axis=2)
    scalars = {n: (("chain", "draw"), chains) for n in ("mu_a", "sigma_a", "mu_b", "sigma_b", "eps")}
    return xr.Dataset({**scalars, "a": (("chain", "draw", "site"), groups), "b": (("chain", "draw", "site"), groups)})


def test_ranks_count_the_kept_draws_below_the_truth():
    data = design(groups=5, rows=2).with_y(np.zeros(10))
    post = _posterior(data, np.arange(100, dtype=float) + 1.0)  # draws 1..100
    truth = {n: np.array(42.5) for n in ("mu_a", "sigma_a", "mu_b", "sigma_b", "eps")}
    truth |= {"a": np.full(5, 42.5), "b": np.full(5, 42.5)}
    every = ranks(post, truth, data, thin=1, rank_draws=100)
    assert every["rank_mu_a"] == every["rank_b_track"] == 42 and every["rank_n"] == 100
    thinned = ranks(post, truth, data, thin=2, rank_draws=30)
    assert thinned["rank_sigma_b"] == 21 and thinned["rank_n"] == 30 and thinned["thin"] == 2  # 1, 3, ..., 41
    # The log-likelihood rank: the truth (42.5) fits y = 0 better than draws above it, worse than those below.
    assert every["rank_loglik"] == 100 - 42


def test_uniform_ranks_pass_and_skewed_ranks_fail():
    rng = np.random.default_rng(2024)
    flat = rng.integers(0, 101, size=500)
    ok = uniformity(flat, 100)
    assert ok["uniform"] and ok["chi2_p"] > 0.01 and ok["simulations"] == 500
    top_heavy = np.minimum(100, rng.integers(40, 140, size=500))  # too many top ranks
    bad = uniformity(top_heavy, 100)
    assert not bad["uniform"] and bad["chi2_p"] < 1e-6 and bad["ecdf_points_outside_band"] > 0
    with pytest.raises(ValueError, match="too few"):
        uniformity([1, 2, 3], 10)
