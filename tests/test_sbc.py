"""The SBC library (funnel.sbc): simulation seeds, simulation from the model, ranks, uniformity."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from funnel.datasets import ModelData
from funnel.sbc import (
    QUANTITIES,
    LogLikelihood,
    kept_draws,
    rank_of,
    ranks,
    scaled_ranks,
    simulate,
    simulation_seed,
    thinning,
    uniformity,
)
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
    assert thinning(4000, ess=400) == 10
    assert thinning(4000, ess=4000) == 1
    assert thinning(4000, ess=8000) == 1  # antithetic draws: ESS above the draws
    assert thinning(4000, ess=50) == 80  # a low ESS keeps fewer, close to independent, draws
    assert thinning(1000, ess=333) == 4  # rounded up: never more kept draws than effective ones
    assert thinning(4000, ess=0.0) == 4000
    assert thinning(4000, ess=float("nan")) == 4000  # a stuck chain: one draw ranks, the fit is kept
    with pytest.raises(ValueError, match="no draws"):
        thinning(0, ess=10)


def test_kept_draws_are_every_thin_th_then_at_most_rank_draws_spread_evenly():
    np.testing.assert_array_equal(kept_draws(20, thin=5, rank_draws=100), [0, 5, 10, 15])
    kept = kept_draws(1000, thin=2, rank_draws=100)
    assert kept.size == 100 and kept[0] == 0 and kept[-1] == 998 and np.all(kept % 2 == 0)
    assert np.all(np.diff(kept) >= 8)  # spread over all 500 thinned draws, not the first 100


def test_rank_counts_draws_below_and_scaled_ranks_map_into_the_unit_interval():
    assert rank_of(np.array([0.1, 0.5, 0.9]), 0.5) == 1 and rank_of(np.array([1.0, 2.0]), 3.0) == 2
    np.testing.assert_allclose(scaled_ranks([0, 10], 10), [0.5 / 11, 10.5 / 11])
    np.testing.assert_allclose(scaled_ranks([0, 3], [9, 3]), [0.05, 0.875])


@pytest.fixture(scope="module")
def toy_loglik() -> LogLikelihood:
    """The log-likelihood of the varying-intercept, varying-slope model on a 5-group design."""
    from funnel.models import build_model

    data = design(groups=5, rows=2).with_y(np.linspace(0.0, 1.0, 10))
    return LogLikelihood(build_model(data, "centered", "blog", mutable_y=True))


def test_log_likelihood_is_the_sum_of_normal_log_densities_of_the_y_it_is_given(toy_loglik):
    # kills: a Jacobian added, sigma on the log scale, the model's own y used in place of the simulated one
    data = design(groups=5, rows=2).with_y(np.arange(10, dtype=float) / 10)
    a, b = np.array([[0.1, 0.2, 0.3, 0.0, -0.2], [0.0] * 5]), np.array([[1.0, -1.0, 0.5, 0.2, 0.1], [0.3] * 5])
    values = {"a": a, "b": b, "eps": np.array([0.7, 1.3])}
    values |= {name: np.array([5.0, 6.0]) for name in ("mu_a", "sigma_a", "mu_b", "sigma_b")}  # not in p(y | ...)
    got = toy_loglik(values, data.y)
    for i, eps in enumerate((0.7, 1.3)):
        mu = a[i, data.group_idx] + b[i, data.group_idx] * data.x
        assert got[i] == pytest.approx(norm.logpdf(data.y, mu, eps).sum(), rel=1e-12)


def _posterior(data: ModelData, values: np.ndarray) -> xr.Dataset:
    """Two chains of 50 draws; every scalar takes ``values`` (chain-major), a and b too."""
    chains = values.reshape(2, 50)
    groups = np.repeat(chains[..., None], data.n_groups, axis=2)
    scalars = {n: (("chain", "draw"), chains) for n in ("mu_a", "sigma_a", "mu_b", "sigma_b", "eps")}
    return xr.Dataset({**scalars, "a": (("chain", "draw", "site"), groups), "b": (("chain", "draw", "site"), groups)})


def test_ranks_count_the_kept_draws_below_the_truth(toy_loglik):
    data = design(groups=5, rows=2).with_y(np.zeros(10))
    post = _posterior(data, np.arange(100, dtype=float) + 1.0)  # draws 1..100
    truth = {n: np.array(42.5) for n in ("mu_a", "sigma_a", "mu_b", "sigma_b", "eps")}
    truth |= {"a": np.full(5, 42.5), "b": np.full(5, 42.5)}
    track = data.groups.index(data.track_group)
    every = ranks(post, truth, data.y, track, thin=1, rank_draws=100, loglik=toy_loglik)
    assert every["rank_mu_a"] == every["rank_b_track"] == 42 and every["rank_n"] == 100
    thinned = ranks(post, truth, data.y, track, thin=2, rank_draws=30, loglik=toy_loglik)
    # Every 2nd draw (1, 3, ..., 99), then 30 of those 50 evenly spread: 13 of them are 1..41.
    kept_values = 1 + kept_draws(100, 2, 30)
    assert kept_values.size == 30 and (kept_values < 42.5).sum() == 13
    assert thinned["rank_sigma_b"] == 13 and thinned["rank_n"] == 30 and thinned["thin"] == 2
    # The log-likelihood rank: the truth (42.5) fits y = 0 better than draws above it, worse than those below.
    assert every["rank_loglik"] == 100 - 42
    # The posterior mean and sd over all draws (not only the kept ones), for the data-averaged check.
    assert every["post_mean_sigma_b"] == thinned["post_mean_sigma_b"] == pytest.approx(50.5)
    assert every["post_sd_b_track"] == pytest.approx(np.std(np.arange(100), ddof=1))


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


# ------------------------------------------------------------------ the machinery on exact posteriors
# A conjugate model whose posterior is known: mu ~ N(0, 1), y_1..y_n ~ N(mu, 1), so
# mu | y ~ N(sum(y) / (n + 1), 1 / sqrt(n + 1)). With exact posterior draws the ranks
# must be uniform; a posterior that is too narrow or shifted must be caught. This
# separates bugs in the rank and test code from real miscalibration.
CONJUGATE_N, SIMULATIONS, DRAWS = 5, 1000, 100


def conjugate_ranks(scale: float = 1.0, shift: float = 0.0, seed: int = 20180607) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty(SIMULATIONS, dtype=int)
    for i in range(SIMULATIONS):
        mu = rng.normal()
        y = rng.normal(mu, 1.0, size=CONJUGATE_N)
        sd = 1.0 / np.sqrt(CONJUGATE_N + 1)
        draws = rng.normal(y.sum() / (CONJUGATE_N + 1) + shift * sd, scale * sd, size=DRAWS)
        out[i] = rank_of(draws, mu)
    return out


def test_exact_posterior_gives_uniform_ranks():
    # Stated level: the 95% simultaneous ECDF band and chi-square p > 0.01, over 1,000 simulations.
    result = uniformity(conjugate_ranks(), DRAWS, prob=0.95)
    assert result["uniform"] and result["chi2_p"] > 0.01 and result["simulations"] == SIMULATIONS


@pytest.mark.parametrize(("scale", "shift"), [(0.8, 0.0), (1.0, 0.3), (1.25, 0.0)])
def test_a_wrong_posterior_is_rejected(scale, shift):
    result = uniformity(conjugate_ranks(scale=scale, shift=shift), DRAWS, prob=0.95)
    assert not result["uniform"] and result["ecdf_points_outside_band"] > 0


def ar1_chain(rng: np.random.Generator, mean: float, sd: float, n: int, phi: float = 0.95) -> np.ndarray:
    """A stationary AR(1) chain whose marginal is N(mean, sd): right draws, strongly autocorrelated."""
    z = np.empty(n)
    z[0] = rng.normal()
    noise = rng.normal(size=n) * np.sqrt(1 - phi**2)
    for t in range(1, n):
        z[t] = phi * z[t - 1] + noise[t]
    return mean + sd * z


def test_thinning_by_ess_removes_the_rank_bias_of_autocorrelated_draws():
    """Right but autocorrelated draws pile ranks at the ends unless thinned by the ESS (the
    prototype's mu_a question): the first 100 raw draws fail the test, the ESS-thinned ones pass."""
    import arviz as az

    rng = np.random.default_rng(7)
    raw, thinned, kept_sizes = [], [], []
    for _ in range(400):
        mu = rng.normal()
        y = rng.normal(mu, 1.0, size=CONJUGATE_N)
        chain = ar1_chain(rng, y.sum() / (CONJUGATE_N + 1), 1 / np.sqrt(CONJUGATE_N + 1), 2000)
        raw.append(rank_of(chain[:DRAWS], mu))
        ess = float(az.ess(chain[None, :], method="bulk"))
        kept = kept_draws(chain.size, thinning(chain.size, ess), DRAWS)
        kept_sizes.append(kept.size)
        thinned.append((rank_of(chain[kept], mu), kept.size))
    assert not uniformity(raw, DRAWS)["uniform"]
    r, n = np.array(thinned).T
    assert uniformity(r, n)["uniform"] and 40 <= np.median(kept_sizes) <= 100


# ------------------------------------------------------------------ the campaign's tables
def fake_records(n: int = 200, seed: int = 5) -> list[dict]:
    """Non-centered: uniform ranks. Centered: sigma_b ranks pushed up in the fits that diverged (a third)."""
    rng = np.random.default_rng(seed)
    records = []
    for model in ("centered", "noncentered"):
        for i in range(1, n + 1):
            diverged = model == "centered" and i % 3 == 0
            rec = {"dataset": "toy", "sampler": "nutpie", "model": model, "simulation": i, "status": "ok"}
            rec |= {"error": "", "diverged": diverged, "divergences": 5 if diverged else 0, "rank_n": 100}
            rec |= {"sampling_seconds": 0.5, "thin": 3}
            rec |= {f"rank_{q}": int(rng.integers(0, 101)) for q in QUANTITIES}
            if diverged:
                rec["rank_sigma_b"] = int(rng.integers(85, 101))
            records.append(rec)
    records.append(
        {"dataset": "toy", "sampler": "nutpie", "model": "noncentered", "simulation": n + 1, "status": "failed"}
        | {"error": "RuntimeError: boom"}
    )
    return records


def test_too_few_fits_are_reported_as_untested_not_as_calibrated():
    from funnel.sbc import calibration, calibration_markdown, conclusion, records_table

    records = records_table(fake_records(n=6))
    table = calibration(records, bins=10)
    assert "uniform" not in table and (table["simulations"] <= 6).all()
    outcome = conclusion(records, table)
    assert not any(g["calibrated"] or g["tested"] for g in outcome["groups"])
    assert "centered (nutpie): too few fits to test" in outcome["line"]
    assert "too few fits |" in calibration_markdown(table, outcome)


def test_calibration_finds_the_miscalibrated_quantity_and_where_it_comes_from():
    from funnel.sbc import calibration, calibration_markdown, conclusion, records_table

    records = records_table(fake_records())
    table = calibration(records, bins=10)
    assert set(table["subset"]) == {"all", "diverged", "not_diverged"}
    row = table.set_index(["model", "quantity", "subset"])
    assert not row.loc[("centered", "sigma_b", "all"), "uniform"]
    assert row.loc[("centered", "sigma_b", "not_diverged"), "uniform"]
    assert row.loc[("centered", "sigma_b", "diverged"), "simulations"] == 66
    assert row.loc[("noncentered", "sigma_b", "all"), "uniform"]
    assert row.loc[("noncentered", "mu_a", "all"), "failed"] == 1
    assert row.loc[("noncentered", "mu_a", "all"), "simulations"] == 200  # the failed fit has no ranks
    # The non-centered fits never diverged: that subset is too small to test.
    assert np.isnan(row.loc[("noncentered", "sigma_b", "diverged"), "chi2_p"])
    outcome = conclusion(records, table)
    groups = {g["model"]: g for g in outcome["groups"]}
    assert groups["centered"]["miscalibrated"] == ["sigma_b"] and not groups["centered"]["calibrated"]
    assert groups["centered"]["miscalibrated_without_divergent_fits"] == []
    assert groups["noncentered"]["calibrated"] and groups["noncentered"]["failed"] == 1
    line = outcome["line"]
    assert "centered (nutpie) miscalibrated in sigma_b" in line and "set aside" in line
    assert "non-centered (nutpie) calibrated in all 8 quantities" in line and "1 failed" in line
    assert "33% of fits diverged" in line
    text = calibration_markdown(table, outcome)
    assert line in text and "| nutpie | centered | sigma_b | all | 200 |" in text and "NO |" in text


# ------------------------------------------------------------------ simulation and the batch runner
@pytest.mark.slow  # compiles a PyMC function
def test_simulator_compiles_once_and_draws_exactly_what_pm_draw_draws():
    import pymc as pm
    from funnel.models import build_model
    from funnel.sbc import Simulator

    data = design(groups=6, rows=3)
    data = data.with_y(np.linspace(0.0, 1.0, data.y.size))  # auto priors need sd(y) > 0
    simulator = Simulator.for_data(data, "auto")
    model = build_model(data, "centered", "auto")
    for seed in (3, 11):
        truth, y = simulator.draw(seed)
        expected = pm.draw([model[name] for name in Simulator.NAMES], random_seed=seed)
        np.testing.assert_array_equal(y, expected[-1])
        np.testing.assert_array_equal(truth["b"], expected[-2])
        assert truth["sigma_b"] == expected[3]
    assert not np.array_equal(simulator.draw(3)[1], simulator.draw(4)[1])


def _settings(**fit):
    from funnel.fitting import FitSettings
    from funnel.sbc import SBCSettings

    settings = FitSettings(sampler="nutpie", model="centered", priors="auto", chains=2, tune=500, draws=500, threads=1)
    return SBCSettings(dataset="toy", fit=replace(settings, **fit))


def _fake_fits(monkeypatch, raise_at: dict | None = None) -> list[int]:
    """Replace the fit of one simulation by a record builder; returns the simulations fitted."""
    import funnel.sbc as sbc

    fitted: list[int] = []

    def fake(sampler, simulator, data, settings, index):
        if raise_at and index in raise_at:
            raise raise_at[index]
        fitted.append(index)
        record = {**sbc.base_record(settings, index), "status": "ok", "error": "", "divergences": 0}
        return record | {"thin": 1, "rank_n": 100, "sampling_seconds": 0.1, "rank_mu_a": index}, None

    monkeypatch.setattr(sbc, "fit_simulation", fake)
    return fitted


def _batch(tmp_path, indices, **kw):
    from funnel.sbc import run_sbc_batch

    records = [tmp_path / "sbc" / f"sim{i}.json" for i in indices]
    report = run_sbc_batch(
        indices=indices,
        records=records,
        key_parts={"table_sha256": "abc"},
        settings=kw.pop("settings", _settings()),
        make_fitter=lambda: (object(), object()),
        data=design(),
        log=lambda line: None,
        **kw,
    )
    return report, records


def test_a_failed_fit_is_recorded_with_its_error_and_the_batch_goes_on(tmp_path, monkeypatch):
    import json

    fitted = _fake_fits(monkeypatch, {2: FloatingPointError("non-finite y")})
    report, records = _batch(tmp_path, [1, 2, 3])
    assert fitted == [1, 3] and report.failed == {2: "FloatingPointError: non-finite y"}
    failed = json.loads(records[1].read_text())
    assert failed["status"] == "failed" and failed["error"] == "FloatingPointError: non-finite y"
    assert failed["simulation"] == 2 and failed["sim_seed"] == simulation_seed("toy", 2)
    assert json.loads(records[2].read_text())["rank_mu_a"] == 3


def test_an_interrupted_batch_resumes_with_only_the_unfinished_simulations(tmp_path, monkeypatch):
    import json

    from funnel.batch import Interrupted

    fitted = _fake_fits(monkeypatch, {3: Interrupted("received SIGINT")})
    with pytest.raises(Interrupted):
        _batch(tmp_path, [1, 2, 3, 4])
    assert fitted == [1, 2]
    assert not (tmp_path / "sbc" / "sim3.json").exists() and not list((tmp_path / "sbc").glob("*.tmp"))
    killed = tmp_path / "sbc" / ".sim3.json.abc123.tmp"  # as a kill during a write leaves it
    killed.write_text("{")
    fitted = _fake_fits(monkeypatch)
    report, records = _batch(tmp_path, [1, 2, 3, 4])
    assert fitted == [3, 4] and report.resumed == [1, 2] and not killed.exists()
    assert [json.loads(p.read_text())["rank_mu_a"] for p in records] == [1, 2, 3, 4]
    # Another setting is another key: the stored records are not reused, and are kept for going back.
    fitted = _fake_fits(monkeypatch)
    report, _ = _batch(tmp_path, [1, 2], settings=_settings(draws=1000))
    assert fitted == [1, 2] and report.resumed == []
    assert len(list((tmp_path / "sbc" / ".store").glob("sim1-*.json"))) == 2
    fitted = _fake_fits(monkeypatch)
    report, _ = _batch(tmp_path, [1, 2])
    assert fitted == [] and report.resumed == [1, 2]


def test_a_stored_record_that_is_damaged_or_of_another_simulation_is_fitted_again(tmp_path, monkeypatch):
    import json

    _fake_fits(monkeypatch)
    _batch(tmp_path, [1, 2])
    store = tmp_path / "sbc" / ".store"
    (one,) = store.glob("sim1-*.json")
    (two,) = store.glob("sim2-*.json")
    # Simulation 1's record and its checksum under simulation 2's name: the record names simulation 1.
    for suffix in ("", ".sha256"):
        if Path(f"{one}{suffix}").exists():
            Path(f"{two}{suffix}").write_bytes(Path(f"{one}{suffix}").read_bytes())
    record = json.loads(one.read_text())
    one.write_text(json.dumps({**record, "rank_mu_a": 99}))  # edited in place, still valid JSON: the checksum
    for path in (tmp_path / "sbc").glob("sim*.json"):
        path.unlink()
    fitted = _fake_fits(monkeypatch)
    report, records = _batch(tmp_path, [1, 2])
    assert fitted == [1, 2] and report.resumed == []
    assert [json.loads(p.read_text())["rank_mu_a"] for p in records] == [1, 2]


# ------------------------------------------------------------------ exact under the null, failures, coverage
# Fits keep different numbers of ranked draws (their ESS): a mixture like a radon campaign's (median 77).
MIXED_RANK_N = tuple(int(n) for n in np.clip(np.random.default_rng(1).lognormal(np.log(77), 0.5, 500), 5, 100))


@pytest.mark.parametrize(
    ("simulations", "rank_n", "campaigns"),
    [(1000, 20, 1000), (1000, 77, 1000), (1000, MIXED_RANK_N, 1000), (10000, 77, 400), (10000, MIXED_RANK_N, 400)],
    ids=["1k-n20", "1k-n77", "1k-mixed", "10k-n77", "10k-mixed"],
)
def test_exactly_uniform_ranks_are_rejected_at_most_at_1_5_times_the_nominal_rate(simulations, rank_n, campaigns):
    from funnel.sbc import null_rejection_rates

    rates = null_rejection_rates(simulations, rank_n, campaigns=campaigns, prob=0.95, seed=simulations + campaigns)
    assert rates["band"] <= 1.5 * rates["nominal"], rates
    assert rates["chi2"] <= 1.5 * rates["nominal"], rates


def test_randomized_ranks_are_exactly_uniform_whatever_the_number_of_ranked_draws():
    from funnel.sbc import randomized_ranks, rank_jitter

    # Every rank of 0..n once, each randomized: the values fill (0, 1) one per interval of width 1/(n + 1).
    for n in (0, 3, 77):
        u = np.sort(randomized_ranks(np.arange(n + 1), n, rank_jitter("toy", "mu_a", np.arange(n + 1))))
        assert np.all(np.floor(u * (n + 1)) == np.arange(n + 1))
    # The jitter is a function of (dataset, quantity, simulation) alone, and it is uniform.
    jitter = rank_jitter("radon", "sigma_b", np.arange(100_000))
    np.testing.assert_array_equal(jitter[[5, 7]], rank_jitter("radon", "sigma_b", [5, 7]))
    assert not np.array_equal(jitter[:50], rank_jitter("radon", "mu_b", np.arange(50)))
    assert jitter.min() >= 0 and jitter.max() < 1 and abs(jitter.mean() - 0.5) < 0.005
    with pytest.raises(ValueError, match="outside 0..n"):
        randomized_ranks([5], 4, [0.5])


def test_vectorized_ecdf_and_band_count_match_arviz():
    from arviz.stats.ecdf_utils import compute_ecdf
    from funnel.sbc import ECDF_POINTS, ecdf_at_points

    u = np.random.default_rng(3).random((3, 257))
    u[0, :5] = ECDF_POINTS[:5]  # values on the evaluation points count at them (<=)
    for row, ecdf in zip(u, ecdf_at_points(u)):
        np.testing.assert_allclose(ecdf, compute_ecdf(np.sort(row), ECDF_POINTS))


def test_coverage_of_central_intervals_from_the_randomized_ranks():
    from funnel.sbc import coverage

    u = (np.arange(1000) + 0.5) / 1000  # perfectly spread values: every interval covers its level
    cover = coverage(u)
    for level in (50, 80, 95):
        assert cover[f"coverage_{level}"] == pytest.approx(level / 100, abs=0.001)
        assert cover[f"coverage_{level}_lo"] < level / 100 < cover[f"coverage_{level}_hi"]
    narrow = coverage(0.5 + (u - 0.5) * 1.6 % 1.0)  # too many truths in the tails: under-coverage
    assert narrow["coverage_50_hi"] < 0.5


def test_data_averaged_posterior_equals_the_prior_for_an_exact_posterior_and_not_for_a_shifted_one():
    import pandas as pd
    from funnel.sbc import dap_threshold, data_averaged

    rng = np.random.default_rng(11)
    mu = rng.normal(size=2000)  # the conjugate model above: mu ~ N(0, 1), 5 observations
    y_sum = rng.normal(mu * CONJUGATE_N, np.sqrt(CONJUGATE_N))
    mean, sd = y_sum / (CONJUGATE_N + 1), np.full(mu.size, 1 / np.sqrt(CONJUGATE_N + 1))
    exact = data_averaged(pd.DataFrame({"post_mean_mu_a": mean, "post_sd_mu_a": sd, "true_mu_a": mu}), "mu_a")
    assert abs(exact["dap_z"]) < dap_threshold() and exact["dap_sd_ratio"] == pytest.approx(1.0, abs=0.05)
    shifted = data_averaged(pd.DataFrame({"post_mean_mu_a": mean + 0.1, "post_sd_mu_a": sd, "true_mu_a": mu}), "mu_a")
    assert shifted["dap_z"] > dap_threshold()
    assert np.isnan(data_averaged(pd.DataFrame({"true_mu_a": mu}), "mu_a")["dap_z"])  # not recorded


def test_a_campaign_with_40_percent_failed_fits_is_not_called_calibrated():
    from funnel.sbc import MAX_FAILED_SHARE, calibration, calibration_markdown, conclusion, records_table

    records = fake_records(n=200)
    for i in range(201, 334):  # 133 more failed: 134 of 334 non-centered fits (40%)
        records.append(
            {"dataset": "toy", "sampler": "nutpie", "model": "noncentered", "simulation": i, "status": "failed"}
            | {"error": "RuntimeError: boom"}
        )
    records = records_table(records)
    table = calibration(records, bins=10)
    outcome = conclusion(records, table)
    groups = {g["model"]: g for g in outcome["groups"]}
    nc = groups["noncentered"]
    assert nc["failed_share"] == pytest.approx(134 / 334) and nc["failed_share"] > MAX_FAILED_SHARE
    assert nc["inconclusive"] and not nc["calibrated"] and nc["miscalibrated"] == []
    assert (
        "non-centered (nutpie) inconclusive: 40% failed (134 failed of 334, more than the 5% allowed)"
        in outcome["line"]
    )
    assert "among the fits that ran, calibrated in all 8 quantities" in outcome["line"]
    text = calibration_markdown(table, outcome)
    assert "| nutpie | noncentered | 334 | 134 (40.1%) |" in text and "| inconclusive |" in text
    row = table.set_index(["model", "quantity", "subset"]).loc[("noncentered", "sigma_b", "all")]
    assert row["failed"] == 134 and row["simulations"] == 200 and row["failed_share"] == pytest.approx(134 / 334)


def test_fits_that_did_not_converge_are_counted_in_the_table_and_the_conclusion():
    from funnel.sbc import calibration, conclusion, records_table

    records = fake_records(n=100)
    for rec in records:
        rec["rhat_max"] = 1.05 if rec["simulation"] % 4 == 0 else 1.001
    records = records_table(records)
    table = calibration(records, bins=10)
    assert table.set_index(["model", "quantity", "subset"]).loc[("noncentered", "mu_a", "all"), "nonconverged"] == 25
    outcome = conclusion(records, table)
    assert "25% did not converge (R-hat > 1.01)" in outcome["line"]
    assert {g["model"]: g["nonconverged"] for g in outcome["groups"]} == {"centered": 25, "noncentered": 25}


# ------------------------------------------------------------------ any family: a binomial design
@pytest.mark.slow  # compiles and samples a binomial model (about 30 s)
def test_sbc_on_a_binomial_design_ranks_the_models_own_log_likelihood():
    """SBC of a formula model (p(incidence, size) ~ 1 + (1 | herd), logit link; funnel.glm): the simulator
    draws from the centered model, the non-centered one is fitted with nutpie, and the log-likelihood ranked
    is the model's own binomial one, checked against scipy's on the first simulation. Kills: a Gaussian (or
    any other) log-likelihood for a binomial outcome, the model's own y in place of the simulated one (tried:
    rank 44 against 50), trials dropped, a wrong link. The uniformity check over 24 fits catches only gross
    errors: a prior mean of the intercept off by 1 (sd 0.7) in the fitted model went unnoticed (tried)."""
    import arviz as az
    import nutpie
    import pandas as pd
    from funnel.formula import parse_formula
    from funnel.glm import Y_DATA, build_glm
    from funnel.sbc import Simulator, kept_draws, ranks, record_ranks, thinning
    from scipy.special import expit
    from scipy.stats import binom, kstest

    rng = np.random.default_rng(26)
    table = pd.DataFrame(
        {
            "herd": np.repeat([f"h{i}" for i in range(8)], 4),
            "incidence": rng.integers(0, 4, 32),
            "size": rng.integers(4, 16, 32),
        }
    )
    design = parse_formula("p(incidence, size) ~ 1 + (1 | herd)", table, "herds")
    priors = {
        "Intercept": {"dist": "Normal", "mu": -1.5, "sigma": 0.7},
        "sigma_1|herd": {"dist": "HalfNormal", "sigma": 0.8},
    }
    centered = build_glm(design, "binomial", True, priors, mutable_y=True)
    structure = centered.structure
    simulator = Simulator(centered, (*structure.hyperparameters, *structure.effects))
    compiled = nutpie.compile_pymc_model(build_glm(design, "binomial", False, priors, mutable_y=True))
    track = 2  # herd h2's intercept
    records = []
    for index in range(24):
        truth, y = simulator.draw(1000 + index)
        assert np.array_equal(y, np.round(y)) and (0 <= y).all() and (y <= table["size"]).all()
        trace = nutpie.sample(
            compiled.with_data(**{Y_DATA: y.astype(np.int64)}),
            chains=2,
            tune=300,
            draws=200,
            seed=index,
            progress_bar=False,
        )
        ess = float(min(az.ess(trace.posterior[list(structure.hyperparameters)]).to_array().values))
        record = ranks(trace.posterior, truth, y, track, thinning(400, ess), 100, simulator.loglik, structure)
        records.append({"simulation": index, "dataset": "herds", **record})
        if index == 0:  # the model's own log-likelihood, written out with scipy, at the kept draws
            post = trace.posterior.stack(sample=("chain", "draw")).transpose("sample", ...)
            kept = kept_draws(400, record["thin"], 100)
            sizes, rows = table["size"].to_numpy(), design.group[0].index
            effects = [*post["1|herd"].values[kept], truth["1|herd"]]
            hand = [binom.logpmf(y, sizes, expit(e[rows])).sum() for e in effects]
            below = sum(value < hand[-1] for value in hand[:-1])
            assert record["rank_loglik"] == below and 0 < below < record["rank_n"]
    fits = pd.DataFrame(records)
    assert {"rank_Intercept", "rank_sigma_1|herd", "rank_1|herd_track", "rank_loglik"} <= set(fits.columns)
    u = {q: record_ranks(fits, q) for q in ("Intercept", "sigma_1|herd", "1|herd_track", "loglik")}
    for name, values in u.items():  # 24 fits: a gross miscalibration only (fixed seeds: the same result every run)
        assert kstest(values, "uniform").pvalue > 0.01, (name, sorted(np.round(values, 2)))
