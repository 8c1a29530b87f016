"""Sampling: determinism per seed, independence from batch composition, diagnostics == ArviZ."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pymc")

from funnel import radon  # noqa: E402
from funnel.bias import estimand_names  # noqa: E402
from funnel.datasets import ModelData, model_data  # noqa: E402
from funnel.diagnostics import Thresholds, fit_diagnostics, fits_table  # noqa: E402
from funnel.experiments import reference_run  # noqa: E402
from funnel.fitting import BatchSampler, FitSettings, map_estimate, write_trace  # noqa: E402

QUIET = {"log": lambda m: None}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> ModelData:
    """The radon survey (embedded copy, Gelman & Hill's transform) as the model reads it."""
    dest = tmp_path_factory.mktemp("src") / "src"
    radon.acquire(radon.SourceSpec(source="embedded"), dest, **QUIET)
    table = radon.clean_source(dest, "arm")[0]
    record = {"dataset": "radon", "track_group": "TRAVERSE", "bias_groups": ["LAC QUI PARLE"], "sigma_b_small": 0.1}
    return model_data(table, radon.COLUMNS, record)


@pytest.fixture(scope="module")
def toy() -> ModelData:
    """A small non-radon dataset: group column 'Subject' with integer values 308, 309, 310."""
    rng = np.random.default_rng(15)
    subject = np.repeat([308, 309, 310], [12, 8, 5])
    days = rng.integers(0, 10, size=subject.size).astype(float)
    slope = {308: 1.0, 309: 10.0, 310: -8.0}  # far apart: the fit cannot confuse them
    reaction = 250.0 + np.array([slope[s] for s in subject]) * days + rng.normal(0.0, 2.0, subject.size)
    table = pd.DataFrame({"Subject": subject, "Days": days, "Reaction": reaction}).sample(frac=1.0, random_state=1)
    record = {"dataset": "toy", "track_group": "310", "bias_groups": ["308"], "sigma_b_small": 0.15}
    return model_data(table, {"group": "Subject", "x": "Days", "y": "Reaction"}, record)


def _settings(sampler: str, model: str = "centered", backend: str = "numba", priors: str = "blog") -> FitSettings:
    return FitSettings(
        sampler=sampler, model=model, chains=2, tune=150, draws=100, backend=backend, threads=2, priors=priors
    )


@pytest.mark.slow  # fits a model
@pytest.mark.parametrize(("sampler", "backend"), [("pymc", "numba"), ("pymc", "c"), ("nutpie", "numba")])
def test_same_seed_same_draws_whatever_the_batch(data, sampler, backend):
    first = BatchSampler(data, _settings(sampler, backend=backend), **QUIET)
    if sampler == "nutpie":  # compiled with the lean callbacks (tests/test_nutpie_compile.py)
        assert first._compiled.compiled_logp_func.__wrapped__.__name__ == "logp_callback"
    alone = first.sample(7)
    assert alone.posterior.attrs["backend"] == backend
    second = BatchSampler(data, _settings(sampler, backend=backend), **QUIET)
    second.sample(3)  # another seed sampled first in the same process
    in_batch = second.sample(7)
    other = second.sample(8)
    for name in ("sigma_b", "b", "mu_a"):
        np.testing.assert_array_equal(alone.posterior[name].values, in_batch.posterior[name].values)
    assert not np.array_equal(alone.posterior["sigma_b"].values, other.posterior["sigma_b"].values)
    np.testing.assert_array_equal(alone.sample_stats["diverging"].values, in_batch.sample_stats["diverging"].values)


@pytest.mark.slow  # fits a model
@pytest.mark.parametrize("backend", ["numba", "c"])
def test_pymc_fits_are_exactly_pm_sample(data, backend):
    """The compiled-once NUTS set-up gives the very draws of a plain pm.sample call."""
    import pymc as pm

    settings = replace(_settings("pymc", "centered", backend), target_accept=0.9)
    batch = BatchSampler(data, settings, **QUIET)
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


@pytest.mark.slow  # fits a model
def test_chains_in_parallel_or_in_turn_give_the_same_draws(data):
    """fit.threads only changes how a job's chains share its cores, never the draws."""
    settings = _settings("pymc", "noncentered")
    parallel = BatchSampler(data, settings, **QUIET).sample(5)
    in_turn = BatchSampler(data, replace(settings, threads=1), **QUIET).sample(5)
    np.testing.assert_array_equal(parallel.posterior["sigma_b"].values, in_turn.posterior["sigma_b"].values)


def test_unknown_backend_is_named(data):
    with pytest.raises(ValueError, match="unknown backend 'jax'; choose one of numba, c"):
        BatchSampler(data, _settings("pymc", backend="jax"), **QUIET)


@pytest.fixture(scope="module")
def stored_trace(data, tmp_path_factory):
    """A small non-centered nutpie fit, written to NetCDF and read back."""
    import arviz as az

    idata = BatchSampler(data, _settings("nutpie", "noncentered"), **QUIET).sample(11)
    path = tmp_path_factory.mktemp("trace") / "seed11.nc"
    write_trace(idata, path)
    return az.from_netcdf(path)


@pytest.mark.slow  # fits a model
def test_trace_contents(stored_trace):
    post, stats = stored_trace.posterior, stored_trace.sample_stats
    assert set(post.data_vars) == {"mu_a", "sigma_a", "mu_b", "sigma_b", "eps", "a_offset", "b_offset", "a", "b"}
    assert post.sizes == {"chain": 2, "draw": 100, "county": 85}
    assert post["b"].sel(county="TRAVERSE").shape == (2, 100)
    for name in ("diverging", "energy", "step_size", "tree_depth", "reached_max_treedepth"):
        assert name in stats
    assert post.attrs["seed"] == 11 and post.attrs["sampler"] == "nutpie" and post.attrs["dataset"] == "radon"
    assert post.attrs["sampling_seconds"] > 0 and post.attrs["compile_seconds"] > 0


@pytest.mark.slow  # fits a model
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_lean_traces_are_smaller_and_read_back_the_same(data, tmp_path, dtype):
    """store_deterministics=False leaves a, b out; every reader gets them back as mu + offset * sigma."""
    import arviz as az
    from funnel.models import with_deterministics
    from funnel.traces import funnel_draws, open_trace

    idata = BatchSampler(data, _settings("nutpie", "noncentered"), **QUIET).sample(11)
    full, lean = tmp_path / "full.nc", tmp_path / "lean.nc"
    write_trace(idata, full)
    write_trace(idata, lean, dtype=dtype, deterministics=False)
    stored = az.from_netcdf(lean).posterior
    assert "a" not in stored and "b" not in stored and stored["b_offset"].dtype == np.dtype(dtype)
    ratio = lean.stat().st_size / full.stat().st_size
    assert ratio < (0.6 if dtype == "float64" else 0.35), ratio
    tol = {"rtol": 1e-12, "atol": 1e-12} if dtype == "float64" else {"rtol": 1e-5, "atol": 1e-5}
    read = open_trace(lean)
    for name in ("a", "b"):
        assert read.posterior[name].dims == idata.posterior[name].dims
        np.testing.assert_allclose(read.posterior[name].values, idata.posterior[name].values, **tol)
    # A wrong formula (a centred on mu_b, say) would not match the sampled deterministics above;
    # a trace that keeps a, b is returned as it is.
    kept = az.from_netcdf(full).posterior
    assert with_deterministics(kept) is kept
    pooled = funnel_draws([lean], "TRAVERSE")
    np.testing.assert_allclose(pooled["b"], idata.posterior["b"].sel(county="TRAVERSE").values.ravel(), **tol)


@pytest.mark.slow  # fits a model
def test_diagnostics_equal_arviz_summary(stored_trace):
    import arviz as az

    record = fit_diagnostics(stored_trace, "TRAVERSE", Thresholds(), bias_groups=["LAC QUI PARLE"], sigma_b_small=0.1)
    summary = az.summary(
        stored_trace, var_names=["mu_a", "sigma_a", "mu_b", "sigma_b", "eps", "a", "b"], round_to="none"
    )
    for name in ("mu_a", "sigma_a", "mu_b", "sigma_b", "eps"):
        assert record[f"ess_bulk_{name}"] == pytest.approx(summary.loc[name, "ess_bulk"], rel=1e-12)
        assert record[f"ess_tail_{name}"] == pytest.approx(summary.loc[name, "ess_tail"], rel=1e-12)
        assert record[f"rhat_{name}"] == pytest.approx(summary.loc[name, "r_hat"], rel=1e-12)
    assert record["ess_bulk_b_TRAVERSE"] == pytest.approx(summary.loc["b[TRAVERSE]", "ess_bulk"], rel=1e-12)
    assert record["ess_bulk_a_TRAVERSE"] == pytest.approx(summary.loc["a[TRAVERSE]", "ess_bulk"], rel=1e-12)
    assert record["rhat_max"] == pytest.approx(summary["r_hat"].max(), rel=1e-12)
    assert record["mcse_mean_sigma_b"] == pytest.approx(summary.loc["sigma_b", "mcse_mean"], rel=1e-12)
    assert record["mean_sigma_b"] == pytest.approx(summary.loc["sigma_b", "mean"], rel=1e-12)
    for group in ("TRAVERSE", "LAC QUI PARLE"):
        assert record[f"est_b[{group}]"] == pytest.approx(summary.loc[f"b[{group}]", "mean"], rel=1e-12)
        assert record[f"mcse_b[{group}]"] == pytest.approx(summary.loc[f"b[{group}]", "mcse_mean"], rel=1e-12)
    sigma_b = stored_trace.posterior["sigma_b"].values
    assert record["p_sigma_b_below_0.1"] == pytest.approx(float((sigma_b < 0.1).mean()), rel=1e-12)
    np.testing.assert_allclose(record["bfmi_per_chain"], az.bfmi(stored_trace), rtol=1e-12)
    diverging = stored_trace.sample_stats["diverging"].values
    assert record["divergences"] == int(diverging.sum())
    assert record["divergences_per_chain"] == [int(x) for x in diverging.sum(axis=1)]
    assert record["pass_divergences"] == (record["divergences"] == 0)
    assert record["pass_ess"] == (min(record["ess_bulk_min"], record["ess_tail_min"]) >= 400)
    assert record["dataset"] == "radon" and record["track_group"] == "TRAVERSE"
    json.dumps(record)  # the record is what the fit job writes as JSON


@pytest.mark.slow  # fits a model
def test_unknown_track_group_is_named(stored_trace):
    with pytest.raises(ValueError, match="track_group 'ATLANTIS' is not a value of 'county' in the trace"):
        fit_diagnostics(stored_trace, "ATLANTIS")


def test_fits_table_refuses_empty_input():
    with pytest.raises(ValueError, match="no fit diagnostics"):
        fits_table([])


# --------------------------------------------------------------------------- any dataset, not only radon
@pytest.mark.slow  # fits a model
def test_a_generic_dataset_samples_with_its_own_group_dimension(toy):
    """Group column 'Subject', values 308, 309, 310: the trace's dimension is 'Subject', labelled as text."""
    idata = BatchSampler(toy, _settings("pymc", "noncentered", "c", priors="auto"), **QUIET).sample(4)
    post = idata.posterior
    for name in ("a", "b", "a_offset", "b_offset"):
        assert post[name].dims == ("chain", "draw", "Subject")
    assert post["Subject"].values.tolist() == ["308", "309", "310"]
    assert post.attrs["dataset"] == "toy" and post.attrs["priors"] == "auto"
    record = fit_diagnostics(idata, "310", Thresholds(), bias_groups=toy.bias_groups, sigma_b_small=toy.sigma_b_small)
    assert record["mean_b_310"] == pytest.approx(float(post["b"].sel(Subject="310").mean()), rel=1e-12)
    assert record["est_b[308]"] == pytest.approx(float(post["b"].sel(Subject="308").mean()), rel=1e-12)
    sigma_b = post["sigma_b"].values
    assert record["p_sigma_b_below_0.15"] == pytest.approx(float((sigma_b < 0.15).mean()), rel=1e-12)
    assert "ess_bulk_b_310" in record and "ess_bulk_a_310" in record
    # The slopes were simulated as 1, 10 and -8 per day: the labels are attached to the right groups.
    means = post["b"].mean(("chain", "draw")).to_series()
    assert means["309"] > means["308"] > means["310"]


@pytest.mark.slow  # fits a model
def test_reference_run_keeps_the_tracked_and_bias_groups(toy):
    idata, summary = reference_run(toy, _settings("pymc", "noncentered", "c", priors="auto"), seed=3, **QUIET)
    assert set(summary["estimands"]) == set(estimand_names(["310", "308"]))
    for name in ("a", "b"):
        assert idata.posterior[name].dims == ("chain", "draw", "Subject")
        assert idata.posterior[name]["Subject"].values.tolist() == ["310", "308"]
    assert summary["estimands"]["b[308]"]["mean"] == pytest.approx(
        float(idata.posterior["b"].sel(Subject="308").mean()), rel=1e-12
    )
    assert summary["diagnostics"]["p_sigma_b_below_0.15"] == summary["estimands"]["p_sigma_b_small"]["mean"]


@pytest.mark.slow  # fits a model
def test_map_of_each_form(data):
    """The centered MAP collapses sigma_b to ~0; the non-centered one inflates it (the blog's point)."""
    centered = map_estimate(data, "centered", "blog")
    noncentered = map_estimate(data, "noncentered", "blog")
    assert centered["dataset"] == noncentered["dataset"] == "radon"
    assert centered["map_sigma_b"] < 1e-3
    assert centered["map_b_spread"] < 1e-3  # every slope pulled to mu_b
    assert noncentered["map_sigma_b"] > 1.0 > 1e3 * centered["map_sigma_b"]
    # Neither is the posterior mean of sigma_b (about 0.26 on radon).
    assert not 0.1 < centered["map_sigma_b"] < 1.0 and not 0.1 < noncentered["map_sigma_b"] < 1.0


@pytest.mark.slow  # fits a model
def test_the_reference_job_stores_its_run_and_a_rerun_takes_it_from_the_store(toy, tmp_path):
    """funnel.batch's loop for the reference: outputs are copies of verified store entries."""
    import arviz as az
    from funnel.experiments import ReferenceBatch

    settings = _settings("pymc", "noncentered", "c", priors="auto")
    outputs = {"trace": tmp_path / "posterior.nc", "summary": tmp_path / "reference.json"}
    lines: list[str] = []

    def run():
        lines.clear()
        ReferenceBatch(data=toy, settings=settings, key_parts={"d": 1}, log=lines.append, **outputs).run([3])

    run()
    idata, summary = reference_run(toy, settings, seed=3, **QUIET)
    stored = json.loads(outputs["summary"].read_text())
    assert stored["estimands"] == json.loads(json.dumps(summary["estimands"]))
    np.testing.assert_array_equal(az.from_netcdf(outputs["trace"]).posterior["b"].values, idata.posterior["b"].values)
    before = {name: path.read_bytes() for name, path in outputs.items()}
    for path in outputs.values():
        path.unlink()
    run()
    assert any("resumed from" in line for line in lines) and not any("sampling..." in line for line in lines)
    assert {name: path.read_bytes() for name, path in outputs.items()} == before


def test_a_priors_mapping_enters_the_settings_and_store_key_as_canonical_json():
    from types import SimpleNamespace

    from funnel.fitting import priors_text, settings_from, settings_key

    one = {"sigma_1|herd": {"dist": "HalfNormal", "sigma": 1.0}, "Intercept": {"dist": "Normal", "mu": 0, "sigma": 2}}
    reordered = {
        "Intercept": {"sigma": 2, "mu": 0, "dist": "Normal"},
        "sigma_1|herd": {"sigma": 1.0, "dist": "HalfNormal"},
    }
    text = priors_text(one)
    assert text == priors_text(reordered)  # the same priors, whatever the order: the same text, the same key
    assert json.loads(text) == one and text.startswith('{"Intercept":{"dist":"Normal","mu":0,"sigma":2}')
    assert priors_text("blog") == "blog" and priors_text("auto") == "auto"
    other = {**one, "sigma_1|herd": {"dist": "HalfNormal", "sigma": 2.0}}
    params = dict(chains=2, tune=10, draws=10, target_accept=0.8, backend="numba")
    keys = [
        settings_key(settings_from(SimpleNamespace(priors=p, **params), "nutpie", "centered", 1), "cbpp", "abc")
        for p in (one, reordered, other)
    ]
    assert keys[0] == keys[1] and keys[0] != keys[2]
    assert keys[0]["priors"] == text
