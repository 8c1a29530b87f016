"""Sampling: determinism per seed, independence from batch composition, diagnostics == ArviZ."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

pytest.importorskip("pymc")

from funnel import data  # noqa: E402
from funnel.diagnostics import Thresholds, fit_diagnostics  # noqa: E402
from funnel.fitting import BatchSampler, FitSettings, use_compile_cache, write_trace  # noqa: E402

use_compile_cache(ROOT / ".cache" / "compile")


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> pd.DataFrame:
    dest = tmp_path_factory.mktemp("src") / "src"
    data.acquire(data.SourceSpec(source="embedded"), dest, log=lambda m: None)
    return data.clean_source(dest, "arm")[0]


def _settings(sampler: str, model: str = "centered", backend: str = "numba") -> FitSettings:
    return FitSettings(sampler=sampler, model=model, chains=2, tune=150, draws=100, backend=backend, threads=2)


@pytest.mark.parametrize(("sampler", "backend"), [("pymc", "numba"), ("pymc", "c"), ("nutpie", "numba")])
def test_same_seed_same_draws_whatever_the_batch(table, sampler, backend):
    first = BatchSampler(table, _settings(sampler, backend=backend), log=lambda m: None)
    alone = first.sample(7)
    assert alone.posterior.attrs["backend"] == backend
    second = BatchSampler(table, _settings(sampler, backend=backend), log=lambda m: None)
    second.sample(3)  # another seed sampled first in the same process
    in_batch = second.sample(7)
    other = second.sample(8)
    for name in ("sigma_b", "b", "mu_a"):
        np.testing.assert_array_equal(alone.posterior[name].values, in_batch.posterior[name].values)
    assert not np.array_equal(alone.posterior["sigma_b"].values, other.posterior["sigma_b"].values)
    np.testing.assert_array_equal(alone.sample_stats["diverging"].values, in_batch.sample_stats["diverging"].values)


@pytest.mark.parametrize("backend", ["numba", "c"])
def test_pymc_fits_are_exactly_pm_sample(table, backend):
    """The compiled-once NUTS set-up gives the very draws of a plain pm.sample call."""
    import pymc as pm

    settings = replace(_settings("pymc", "centered", backend), target_accept=0.9)
    batch = BatchSampler(table, settings, log=lambda m: None)
    ours = batch.sample(21)
    plain = pm.sample(
        model=batch.model,
        chains=settings.chains,
        tune=settings.tune,
        draws=settings.draws,
        cores=settings.threads,
        random_seed=21,
        target_accept=0.9,
        progressbar=False,
        compute_convergence_checks=False,
        compile_kwargs={"mode": "NUMBA"} if backend == "numba" else {},
    )
    for name in ("sigma_b", "b", "eps"):
        np.testing.assert_array_equal(ours.posterior[name].values, plain.posterior[name].values)
    np.testing.assert_array_equal(ours.sample_stats["step_size"].values, plain.sample_stats["step_size"].values)


def test_chains_in_parallel_or_in_turn_give_the_same_draws(table):
    """fit.threads only changes how a job's chains share its cores, never the draws."""
    settings = _settings("pymc", "noncentered")
    parallel = BatchSampler(table, settings, log=lambda m: None).sample(5)
    in_turn = BatchSampler(table, replace(settings, threads=1), log=lambda m: None).sample(5)
    np.testing.assert_array_equal(parallel.posterior["sigma_b"].values, in_turn.posterior["sigma_b"].values)


def test_unknown_backend_is_named(table):
    with pytest.raises(ValueError, match="unknown backend 'jax'; choose one of numba, c"):
        BatchSampler(table, _settings("pymc", backend="jax"), log=lambda m: None)


@pytest.fixture(scope="module")
def stored_trace(table, tmp_path_factory):
    """A small non-centered nutpie fit, written to NetCDF and read back."""
    import arviz as az

    idata = BatchSampler(table, _settings("nutpie", "noncentered"), log=lambda m: None).sample(11)
    path = tmp_path_factory.mktemp("trace") / "seed11.nc"
    write_trace(idata, path)
    return az.from_netcdf(path)


def test_trace_contents(stored_trace):
    post, stats = stored_trace.posterior, stored_trace.sample_stats
    assert set(post.data_vars) == {"mu_a", "sigma_a", "mu_b", "sigma_b", "eps", "a_offset", "b_offset", "a", "b"}
    assert post.sizes == {"chain": 2, "draw": 100, "county": 85}
    assert post["b"].sel(county="TRAVERSE").shape == (2, 100)
    for name in ("diverging", "energy", "step_size", "tree_depth", "reached_max_treedepth"):
        assert name in stats
    assert post.attrs["seed"] == 11 and post.attrs["sampler"] == "nutpie"
    assert post.attrs["sampling_seconds"] > 0 and post.attrs["compile_seconds"] > 0


def test_diagnostics_equal_arviz_summary(stored_trace):
    import arviz as az

    record = fit_diagnostics(stored_trace, "TRAVERSE", Thresholds())
    summary = az.summary(
        stored_trace, var_names=["mu_a", "sigma_a", "mu_b", "sigma_b", "eps", "a", "b"], round_to="none"
    )
    for name in ("mu_a", "sigma_a", "mu_b", "sigma_b", "eps"):
        assert record[f"ess_bulk_{name}"] == pytest.approx(summary.loc[name, "ess_bulk"], rel=1e-12)
        assert record[f"ess_tail_{name}"] == pytest.approx(summary.loc[name, "ess_tail"], rel=1e-12)
        assert record[f"rhat_{name}"] == pytest.approx(summary.loc[name, "r_hat"], rel=1e-12)
    assert record["ess_bulk_b_TRAVERSE"] == pytest.approx(summary.loc["b[TRAVERSE]", "ess_bulk"], rel=1e-12)
    assert record["rhat_max"] == pytest.approx(summary["r_hat"].max(), rel=1e-12)
    assert record["mcse_mean_sigma_b"] == pytest.approx(summary.loc["sigma_b", "mcse_mean"], rel=1e-12)
    assert record["mean_sigma_b"] == pytest.approx(summary.loc["sigma_b", "mean"], rel=1e-12)
    np.testing.assert_allclose(record["bfmi_per_chain"], az.bfmi(stored_trace), rtol=1e-12)
    diverging = stored_trace.sample_stats["diverging"].values
    assert record["divergences"] == int(diverging.sum())
    assert record["divergences_per_chain"] == [int(x) for x in diverging.sum(axis=1)]
    assert record["pass_divergences"] == (record["divergences"] == 0)
    assert record["pass_ess"] == (min(record["ess_bulk_min"], record["ess_tail_min"]) >= 400)
    json.dumps(record)  # the record is what the fit job writes as JSON


def test_unknown_small_county_is_named(stored_trace):
    with pytest.raises(ValueError, match="small_county 'ATLANTIS' is not a county"):
        fit_diagnostics(stored_trace, "ATLANTIS")
