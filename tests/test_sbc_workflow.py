"""The SBC campaign end to end: real Snakemake, PyMC, nutpie and ArviZ on a small CSV design."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import USER_CSV, copy_config, run_snakemake, write_user_csv

pytestmark = pytest.mark.slow

USER = {"user": {"source": "csv", "path": USER_CSV, "columns": {"group": "plot", "x": "dose", "y": "yield"}}}
SMALL_SBC = {
    "enabled": True,
    "datasets": ["user"],
    "samplers": ["nutpie"],
    "models": ["centered", "noncentered"],
    "simulations": 12,
    "batch_size": 6,
    "chains": 2,
    "tune": 200,
    "draws": 200,
    "rank_draws": 50,
}


def campaign(folder: Path, **sbc) -> Path:
    folder.mkdir()
    write_user_csv(folder)
    copy_config(folder, datasets=USER, sbc={**SMALL_SBC, **sbc})
    return folder


def records(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "results/user/sbc/records.csv")


def test_campaign_records_every_fit_keeps_failures_and_does_not_depend_on_batching(tmp_path):
    first = campaign(tmp_path / "first")
    run_snakemake(first, "sbc", env={"FUNNEL_TEST_FAIL_SIMULATIONS": "5"})
    table = records(first)
    assert len(table) == 24 and set(table["model"]) == {"centered", "noncentered"}
    failed = table[table["status"] == "failed"]
    assert sorted(failed["simulation"]) == [5, 5] and failed["error"].str.contains("injected fault").all()
    ok = table[table["status"] == "ok"]
    assert ok[[f"rank_{q}" for q in ("mu_a", "sigma_b", "b_track", "loglik")]].notna().all().all()
    assert ((ok["rank_sigma_b"] >= 0) & (ok["rank_sigma_b"] <= ok["rank_n"]) & (ok["rank_n"] <= 50)).all()
    # Both forms fitted the same simulated data sets: the truths agree, row for row.
    by_model = {m: part.set_index("simulation") for m, part in ok.groupby("model")}
    pd.testing.assert_series_equal(by_model["centered"]["true_sigma_b"], by_model["noncentered"]["true_sigma_b"])
    calibration = pd.read_csv(first / "results/user/sbc/calibration.csv")
    assert len(calibration) == 2 * 8 * 3 and (calibration["failed"] == 1).all()
    conclusion = json.loads((first / "results/user/sbc/conclusion.json").read_text())
    assert conclusion["line"].startswith("SBC, 12 simulations on user's design") and "1 failed" in conclusion["line"]
    for model in ("centered", "noncentered"):
        for batch in (0, 1):
            log = first / f"results/logs/user/sbc/nutpie/{model}/batch{batch}.log"
            assert "batch done" in log.read_text()
            assert (first / f"results/benchmarks/user/sbc/nutpie/{model}/batch{batch}.tsv").is_file()
    assert (
        "FAILED: RuntimeError: injected fault for simulation 5"
        in (first / "results/logs/user/sbc/nutpie/centered/batch0.log").read_text()
    )

    # Deleting the failed record and rerunning refits simulation 5 only: the batch's
    # other simulations come from the store.
    targets = [f"results/user/sbc/nutpie/{model}/sim5.json" for model in ("centered", "noncentered")]
    for target in targets:
        (first / target).unlink()
    run_snakemake(first, *targets)
    log = (first / "results/logs/user/sbc/nutpie/centered/batch0.log").read_text()
    assert "5 resumed from the store" in log and "simulation 5: fitted" in log
    assert all(json.loads((first / t).read_text())["status"] == "ok" for t in targets)

    # A fresh campaign of the first 6 simulations, 3 per job, gives the same records;
    # asked to, it keeps the traces too.
    other = campaign(tmp_path / "other", simulations=6, batch_size=3, models=["centered"], keep_traces=True)
    run_snakemake(other, *[f"results/user/sbc/nutpie/centered/sim{i}.json" for i in range(1, 7)])
    assert len(list((other / "results/logs/user/sbc/nutpie/centered").glob("batch*.log"))) == 2
    for i in range(1, 7):
        ours = json.loads((first / f"results/user/sbc/nutpie/centered/sim{i}.json").read_text())
        theirs = json.loads((other / f"results/user/sbc/nutpie/centered/sim{i}.json").read_text())
        ours.pop("sampling_seconds"), theirs.pop("sampling_seconds")
        assert ours == theirs, i
    import arviz as az

    trace = az.from_netcdf(other / "results/user/sbc/nutpie/centered/sim2.nc")
    assert dict(trace.posterior.sizes)["chain"] == 2 and dict(trace.posterior.sizes)["draw"] == 200
    assert (
        int(trace.sample_stats["diverging"].sum())
        == json.loads((other / "results/user/sbc/nutpie/centered/sim2.json").read_text())["divergences"]
    )
    assert not list((first / "results/user/sbc/nutpie/centered").glob("*.nc"))  # not kept by default
    assert (first / "results/user/sbc/nutpie/centered/sim1.json").stat().st_size < 4000  # a few kB


def test_sbc_settings_are_validated_before_any_job(tmp_path):
    folder = campaign(tmp_path / "bad", datasets=["nosuch"])
    proc = run_snakemake(folder, "sbc", "-n", check=False)
    assert proc.returncode != 0
    assert (
        "sbc.datasets names 'nosuch', which are not columns-shorthand datasets of this run (radon, user; the "
        "workflow has no SBC campaign of a formula dataset yet)" in proc.stdout + proc.stderr
    )
    config = folder / "config.yaml"
    config.write_text(config.read_text().replace("rank_draws: 50", "rank_draw: 50"))
    proc = run_snakemake(folder, "sbc", "-n", check=False)
    assert "unknown config key 'sbc.rank_draw'" in proc.stdout + proc.stderr
    assert not (folder / "results").exists()


def test_sbc_target_says_how_to_switch_the_campaign_on(tmp_path):
    folder = campaign(tmp_path / "off", enabled=False)
    proc = run_snakemake(folder, "sbc", "-n", check=False)
    assert proc.returncode != 0
    assert "sbc.enabled is false: add --configfile workflow/presets/sbc.yaml" in proc.stdout + proc.stderr


def test_blog_priors_warn_that_sbc_would_simulate_implausible_data(tmp_path):
    folder = campaign(tmp_path / "blog", priors="blog")
    proc = run_snakemake(folder, "sbc", "-n")
    assert "sbc.priors is 'blog'" in proc.stderr and "use auto" in proc.stderr.lower()
