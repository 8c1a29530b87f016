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
    sigma_a = np.exp(rng.normal(-1.0, 0.5, size=(4, 500)))
    b = rng.normal(-0.6, 0.2, size=(4, 500, 2))
    b[..., 1] += 1.0  # the two groups differ: picking the wrong one shows
    return xr.Dataset(
        {
            "sigma_b": (("chain", "draw"), sigma_b),
            "sigma_a": (("chain", "draw"), sigma_a),
            "b": (("chain", "draw", "Subject"), b),
        },
        coords={"chain": range(4), "draw": range(500), "Subject": subjects},
    )


def test_estimands_use_arviz_mcse(posterior):
    import arviz as az

    est = estimands(posterior, ["309"])
    assert list(est) == estimand_names(["309"])
    assert list(est) == [
        *("sigma_b", "log_sigma_b", "p_sigma_b_small"),
        *("sigma_a", "log_sigma_a", "p_sigma_a_small"),
    ] + ["b[309]"]
    sigma_a = posterior["sigma_a"]
    assert est["log_sigma_a"]["mean"] == pytest.approx(float(np.log(sigma_a).mean()), rel=1e-12)
    assert est["p_sigma_a_small"]["mean"] == pytest.approx(float((sigma_a < 0.1).mean()), rel=1e-12)
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


# --------------------------------------------------------------------------- sweeps that reuse the main fits
def _record(seed: int, level: float, source: str) -> dict:
    """A diagnostics record as fit_diagnostics gives it, with what the sweeps read."""
    return {
        "seed": seed,
        "source": source,
        "level": level,
        "divergences": 0,
        "ess_bulk_sigma_b": 100.0 + seed,
        "ess_bulk_sigma_b_per_s": 10.0,
        "ess_bulk_mu_a": 200.0,
        "ess_bulk_b_309": 300.0,
        "sampling_seconds": 2.0,
        "est_sigma_b": 0.3,
        "mcse_sigma_b": 0.01,
        "divergences_per_chain": [0, 0],
    }


class _Sampler:
    """Stands in for BatchSampler: counts compiles and samples, fits nothing."""

    built: list = []

    def __init__(self, data, settings, log=print):
        self.built.append(len(data.y))

    def sample(self, seed, target_accept=None):
        return {"seed": seed, "level": target_accept}


@pytest.fixture
def fake_sampler(monkeypatch):
    from funnel import experiments

    _Sampler.built = []
    monkeypatch.setattr(experiments, "BatchSampler", _Sampler)
    monkeypatch.setattr(
        experiments, "_diagnose", lambda idata, data, thresholds: _record(idata["seed"], idata["level"], "fitted")
    )
    return _Sampler


def test_sweeps_whose_levels_are_all_main_fits_fit_nothing(fake_sampler):
    from funnel.diagnostics import Thresholds
    from funnel.experiments import rows_sweep, target_accept_sweep
    from funnel.fitting import FitSettings

    settings = FitSettings(sampler="nutpie", model="centered")
    known = {(0.8, seed): _record(seed, 0.8, "main") for seed in (1, 2)}
    reference = {"sigma_b": {"mean": 0.26, "mcse": 0.0}}
    rows = target_accept_sweep(_data(), settings, [0.8], [1, 2], Thresholds(), reference, known, log=lambda m: None)
    assert fake_sampler.built == []  # nothing compiled, nothing sampled
    assert rows["source"].tolist() == ["main", "main"] and rows["seed"].tolist() == [1, 2]
    assert rows["ess_bulk_sigma_b"].tolist() == [101.0, 102.0]
    assert rows["z_sigma_b"].tolist() == pytest.approx([4.0, 4.0])  # (0.3 - 0.26) / 0.01
    assert rows["divergences_per_chain"].tolist() == ["0 0", "0 0"]
    known = {(1, s): _record(s, 1, "main") for s in (1, 2)}
    rows = rows_sweep(_data(), settings, [1], [1, 2], Thresholds(), known, log=lambda m: None)
    assert fake_sampler.built == [] and rows["source"].tolist() == ["main", "main"]
    assert rows["ess_bulk_b_track_per_s"].tolist() == [150.0, 150.0]  # 300 / 2 s


def test_sweeps_compile_once_for_what_is_left(fake_sampler):
    from funnel.diagnostics import Thresholds
    from funnel.experiments import rows_sweep, target_accept_sweep
    from funnel.fitting import FitSettings

    settings = FitSettings(sampler="nutpie", model="centered")
    known = {(0.8, 1): _record(1, 0.8, "main")}
    rows = target_accept_sweep(_data(), settings, [0.8, 0.99], [1, 2], Thresholds(), None, known, log=lambda m: None)
    assert fake_sampler.built == [3]  # one compile for every level left to fit
    assert list(zip(rows["level"], rows["seed"], rows["source"])) == [
        (0.8, 1, "main"),
        (0.8, 2, "fitted"),
        (0.99, 1, "fitted"),
        (0.99, 2, "fitted"),
    ]
    assert "z_sigma_b" not in rows  # no reference, no z
    fake_sampler.built = []
    rows = rows_sweep(
        _data(), settings, [1, 10], [1], Thresholds(), {(1, 1): _record(1, 1, "main")}, log=lambda m: None
    )
    assert fake_sampler.built == [30]  # only the x10 data are compiled
    assert rows["source"].tolist() == ["main", "fitted"] and rows["rows_factor"].tolist() == [1, 10]
