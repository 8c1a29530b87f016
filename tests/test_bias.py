"""Bias z-scores against the reference, and the experiments' helpers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from funnel.bias import estimands, flat, z_columns, z_score
from funnel.experiments import replicate_homes, summarize_sweep


def test_z_score_hand_checked():
    # (0.30 - 0.26) / sqrt(0.03^2 + 0.04^2) = 0.04 / 0.05 = 0.8
    assert z_score({"mean": 0.30, "mcse": 0.03}, {"mean": 0.26, "mcse": 0.04}) == pytest.approx(0.8, rel=1e-12)
    assert z_score({"mean": 0.20, "mcse": 0.012}, {"mean": 0.26, "mcse": 0.005}) == pytest.approx(
        -0.06 / 0.013, rel=1e-12
    )
    assert z_score({"mean": 1.0, "mcse": 0.0}, {"mean": 1.0, "mcse": 0.0}) == 0.0
    assert z_score({"mean": 2.0, "mcse": 0.0}, {"mean": 1.0, "mcse": 0.0}) == math.inf


@pytest.fixture
def posterior():
    rng = np.random.default_rng(0)
    counties = ["ALPHA", "TRAVERSE"]
    sigma_b = np.exp(rng.normal(-1.4, 0.6, size=(4, 500)))
    b = rng.normal(-0.6, 0.2, size=(4, 500, 2))
    return xr.Dataset(
        {"sigma_b": (("chain", "draw"), sigma_b), "b": (("chain", "draw", "county"), b)},
        coords={"chain": range(4), "draw": range(500), "county": counties},
    )


def test_estimands_use_arviz_mcse(posterior):
    import arviz as az

    est = estimands(posterior, ["TRAVERSE"])
    assert set(est) == {"sigma_b", "log_sigma_b", "p_sigma_b_small", "b[TRAVERSE]"}
    sigma_b = posterior["sigma_b"]
    assert est["sigma_b"]["mean"] == pytest.approx(float(sigma_b.mean()), rel=1e-12)
    assert est["log_sigma_b"]["mean"] == pytest.approx(float(np.log(sigma_b).mean()), rel=1e-12)
    assert est["p_sigma_b_small"]["mean"] == pytest.approx(float((sigma_b < 0.1).mean()), rel=1e-12)
    mcse = float(az.mcse(xr.Dataset({"x": sigma_b}), method="mean")["x"])
    assert est["sigma_b"]["mcse"] == pytest.approx(mcse, rel=1e-12)
    b = posterior["b"].sel(county="TRAVERSE")
    assert est["b[TRAVERSE]"]["mean"] == pytest.approx(float(b.mean()), rel=1e-12)
    # Independent draws: the MCSE of a mean is close to sd / sqrt(n).
    assert est["b[TRAVERSE]"]["mcse"] == pytest.approx(float(b.std()) / math.sqrt(2000), rel=0.15)
    with pytest.raises(ValueError, match="county 'ATLANTIS' is not in the posterior"):
        estimands(posterior, ["ATLANTIS"])


def test_z_columns_from_flat_records(posterior):
    est = estimands(posterior, ["TRAVERSE"])
    row = flat(est)
    # A fit identical to the reference has z = 0 everywhere.
    assert all(v == 0.0 for v in z_columns(row, est).values())
    shifted = {**row, "est_sigma_b": row["est_sigma_b"] + 3 * math.hypot(row["mcse_sigma_b"], est["sigma_b"]["mcse"])}
    assert z_columns(shifted, est)["z_sigma_b"] == pytest.approx(3.0, rel=1e-12)


def test_replicate_homes():
    table = pd.DataFrame({"county_idx": [0, 0, 1], "floor": [0, 1, 0], "log_radon": [1.0, 2.0, 3.0]})
    tripled = replicate_homes(table, 3)
    assert len(tripled) == 9
    assert tripled.groupby("county_idx").size().tolist() == [6, 3]
    with pytest.raises(ValueError, match="must be >= 1"):
        replicate_homes(table, 0)


def test_summarize_sweep_medians_per_level():
    rows = pd.DataFrame(
        {
            "sampler": ["nutpie"] * 4,
            "model": ["centered"] * 4,
            "target_accept": [0.8, 0.8, 0.99, 0.99],
            "divergences": [4, 2, 0, 1],
            "ess_bulk_sigma_b": [10.0, 30.0, 5.0, 7.0],
        }
    )
    summary = summarize_sweep(rows, "target_accept").set_index("target_accept")
    assert summary.loc[0.8, "divergences_median"] == 3
    assert summary.loc[0.99, "ess_bulk_sigma_b_max"] == 7.0
    assert summary["seeds"].tolist() == [2, 2]


def test_crossover_sentence_finds_the_first_size_where_centered_wins():
    from funnel.experiment_plots import crossover_sentence

    summary = pd.DataFrame(
        {
            "sampler": ["nutpie"] * 6,
            "model": ["centered"] * 3 + ["noncentered"] * 3,
            "homes_per_county_median_median": [5.0, 25.0, 100.0] * 2,
            "ess_bulk_sigma_b_per_s_median": [30.0, 400.0, 900.0, 350.0, 120.0, 40.0],
        }
    )
    assert "from 25 homes per county" in crossover_sentence(summary)
    summary.loc[summary["model"] == "centered", "ess_bulk_sigma_b_per_s_median"] = 1.0
    assert "non-centered form stays ahead" in crossover_sentence(summary)


def test_bias_sentence_counts_flagged_fits():
    from funnel.experiment_plots import bias_sentence

    fits = pd.DataFrame(
        {
            "model": ["centered"] * 3 + ["noncentered"] * 2,
            "z_sigma_b": [3.5, -4.0, 1.0, 0.2, -0.5],
            "ess_bulk_sigma_b": [20, 30, 40, 800, 900],
        }
    )
    text = bias_sentence(fits)
    assert "centered: 2 of 3 fits have |z| ≥ 3" in text
    assert "noncentered: 0 of 2 fits" in text
