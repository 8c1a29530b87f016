"""Bias z-scores against the reference, and the experiments' helpers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from funnel.bias import estimand_names, estimands, flat, z_columns, z_score
from funnel.datasets import ModelData
from funnel.experiments import summarize_sweep


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
    """A posterior whose group dimension is a user's column ('Subject'), labelled with text."""
    rng = np.random.default_rng(0)
    subjects = ["308", "309"]
    sigma_b = np.exp(rng.normal(-1.4, 0.6, size=(4, 500)))
    b = rng.normal(-0.6, 0.2, size=(4, 500, 2))
    b[..., 1] += 1.0  # the two groups differ: picking the wrong one shows
    return xr.Dataset(
        {"sigma_b": (("chain", "draw"), sigma_b), "b": (("chain", "draw", "Subject"), b)},
        coords={"chain": range(4), "draw": range(500), "Subject": subjects},
    )


def test_estimands_use_arviz_mcse(posterior):
    import arviz as az

    est = estimands(posterior, ["309"])
    assert list(est) == estimand_names(["309"]) == ["sigma_b", "log_sigma_b", "p_sigma_b_small", "b[309]"]
    sigma_b = posterior["sigma_b"]
    assert est["sigma_b"]["mean"] == pytest.approx(float(sigma_b.mean()), rel=1e-12)
    assert est["log_sigma_b"]["mean"] == pytest.approx(float(np.log(sigma_b).mean()), rel=1e-12)
    assert est["p_sigma_b_small"]["mean"] == pytest.approx(float((sigma_b < 0.1).mean()), rel=1e-12)
    mcse = float(az.mcse(xr.Dataset({"x": sigma_b}), method="mean")["x"])
    assert est["sigma_b"]["mcse"] == pytest.approx(mcse, rel=1e-12)
    b = posterior["b"].sel(Subject="309")
    assert est["b[309]"]["mean"] == pytest.approx(float(b.mean()), rel=1e-12)
    # Independent draws: the MCSE of a mean is close to sd / sqrt(n).
    assert est["b[309]"]["mcse"] == pytest.approx(float(b.std()) / math.sqrt(2000), rel=0.15)
    with pytest.raises(ValueError, match="group 'ATLANTIS' is not in the posterior's 'Subject'"):
        estimands(posterior, ["ATLANTIS"])


@pytest.mark.parametrize("threshold", [0.1, 0.3])
def test_the_funnel_neck_threshold_is_the_datasets(posterior, threshold):
    """P(sigma_b < sigma_b_small) uses the dataset's threshold, not radon's 0.1."""
    est = estimands(posterior, [], sigma_b_small=threshold)
    expected = float((posterior["sigma_b"] < threshold).mean())
    assert est["p_sigma_b_small"]["mean"] == pytest.approx(expected, rel=1e-12)
    assert 0.05 < expected < 0.95  # both thresholds cut the draws: a wrong one shows


def test_z_columns_from_flat_records(posterior):
    est = estimands(posterior, ["309"])
    row = flat(est)
    assert row["est_b[309]"] == est["b[309]"]["mean"] and row["mcse_b[309]"] == est["b[309]"]["mcse"]
    # A fit identical to the reference has z = 0 everywhere.
    assert all(v == 0.0 for v in z_columns(row, est).values())
    shifted = {**row, "est_sigma_b": row["est_sigma_b"] + 3 * math.hypot(row["mcse_sigma_b"], est["sigma_b"]["mcse"])}
    assert z_columns(shifted, est)["z_sigma_b"] == pytest.approx(3.0, rel=1e-12)


def _data() -> ModelData:
    return ModelData(
        group_dim="Subject",
        groups=("308", "309"),
        group_idx=np.array([0, 0, 1]),
        x=np.array([0.0, 1.0, 0.0]),
        y=np.array([1.0, 2.0, 3.0]),
        x_name="Days",
        y_name="Reaction",
        dataset="toy",
        track_group="309",
        bias_groups=("308",),
        sigma_b_small=0.2,
    )


def test_model_data_replicate():
    data = _data()
    tripled = data.replicate(3)
    assert len(tripled.y) == len(tripled.x) == len(tripled.group_idx) == 9
    assert np.bincount(tripled.group_idx).tolist() == [6, 3]
    # Row i's copies keep its group, x and y together.
    np.testing.assert_array_equal(tripled.group_idx, np.tile(data.group_idx, 3))
    np.testing.assert_array_equal(tripled.x, np.tile(data.x, 3))
    np.testing.assert_array_equal(tripled.y, np.tile(data.y, 3))
    # Same groups, names and settings: only the rows are multiplied.
    for field in ("group_dim", "groups", "x_name", "y_name", "dataset", "track_group", "bias_groups", "sigma_b_small"):
        assert getattr(tripled, field) == getattr(data, field)
    assert data.replicate(1).y.tolist() == data.y.tolist()
    assert len(data.y) == 3  # the original is untouched
    with pytest.raises(ValueError, match="must be >= 1"):
        data.replicate(0)


@pytest.mark.parametrize(
    ("experiment", "level", "metric", "values", "medians"),
    [
        ("target_accept", [0.8, 0.8, 0.99, 0.99], "divergences", [4, 2, 0, 1], {0.8: 3, 0.99: 0.5}),
        ("rows_per_group", [1, 1, 10, 10], "ess_bulk_b_track_per_s", [5.0, 7.0, 50.0, 90.0], {1: 6.0, 10: 70.0}),
    ],
)
def test_summarize_sweep_medians_per_level(experiment, level, metric, values, medians):
    """Each sweep is summarized per level (target_accept, or replication factor of the rows)."""
    column = {"target_accept": "target_accept", "rows_per_group": "rows_factor"}[experiment]
    rows = pd.DataFrame({"sampler": ["nutpie"] * 4, "model": ["centered"] * 4, column: level, metric: values})
    summary = summarize_sweep(rows, experiment).set_index(column)
    for key, median in medians.items():
        assert summary.loc[key, f"{metric}_median"] == median
    assert summary.loc[level[-1], f"{metric}_max"] == max(values[2:])
    assert summary["seeds"].tolist() == [2, 2]
