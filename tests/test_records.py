"""The per-fit record (workflow/funnel/records.py): the diagnostics write exactly its fields, with its
types; its pass checks and derived names are the ones every reader uses."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from funnel import records as R
from funnel.diagnostics import fit_diagnostics, fits_table, readable_summary, summarize

GROUPS = ["ALPHA", "BETA", "GAMMA"]


def fake_trace(seed: int = 0, divergent: int = 0):
    """A small trace with the model's variables and sample stats (no PyMC needed)."""
    import arviz as az

    rng = np.random.default_rng(seed)
    chains, draws = 2, 200
    posterior = {name: rng.normal(0, 1, (chains, draws)) for name in ("mu_a", "mu_b")}
    posterior |= {name: np.exp(rng.normal(-1, 0.3, (chains, draws))) for name in ("sigma_a", "sigma_b", "eps")}
    posterior |= {name: rng.normal(0, 1, (chains, draws, len(GROUPS))) for name in ("a", "b")}
    diverging = np.zeros((chains, draws), dtype=bool)
    diverging[0, :divergent] = True
    stats = {
        "diverging": diverging,
        "tree_depth": rng.integers(1, 5, (chains, draws)),
        "step_size": np.full((chains, draws), 0.3),
        "energy": rng.normal(0, 1, (chains, draws)),
        "reached_max_treedepth": np.zeros((chains, draws), dtype=bool),
    }
    idata = az.from_dict(
        posterior=posterior, sample_stats=stats, coords={"county": GROUPS}, dims={"a": ["county"], "b": ["county"]}
    )
    idata.posterior.attrs.update(
        dataset="trial", sampler="pymc", model="centered", seed=seed, tune=500, target_accept=0.8, priors="blog",
        compile_seconds=1.5, sampling_seconds=2.0, import_seconds=0.5,
    )  # fmt: skip
    return idata


def test_the_diagnostics_write_exactly_the_records_fields_in_order_with_their_types():
    record = fit_diagnostics(fake_trace(), "BETA", bias_groups=["GAMMA"], sigma_b_small=0.25)
    fields = R.fields("BETA", 0.25, ["GAMMA"])
    assert list(record) == [f.name for f in fields]
    assert R.check_record(record, fields) == []
    json.dumps(record)
    # The derived names are the record's: the neck, the tracked group's ESS, the bias estimands.
    assert R.below_column(0.25) == "p_sigma_b_below_0.25" in record
    assert R.ess_column("bulk", "b_BETA") in record and R.est_column(R.slope_estimand("GAMMA")) == "est_b[GAMMA]"
    assert R.check_record({**record, "extra": 1}, fields) == ["unexpected extra"]
    assert R.check_record({**record, "seed": "1"}, fields) == ["seed is str, not <class 'int'>"]


@pytest.mark.parametrize("divergent", [0, 3])
def test_pass_checks_are_computed_once_from_the_record(divergent):
    record = fit_diagnostics(fake_trace(divergent=divergent), "BETA", R.Thresholds(ess_min=10))
    assert {k: record[k] for k in R.PASS_COLUMNS} == R.pass_checks(record, R.Thresholds(ess_min=10))
    assert record["pass_divergences"] is (divergent == 0)
    assert record[R.PASS_ALL] == all(record[c.column] for c in R.CHECKS)
    strict = R.pass_checks(record, R.Thresholds(ess_min=1e9))
    assert strict["pass_ess"] is False and strict[R.PASS_ALL] is False
    assert R.failed_checks() == dict.fromkeys(R.PASS_COLUMNS, False)


def test_tables_read_the_records_names():
    good = fit_diagnostics(fake_trace(1), "BETA", R.Thresholds(ess_min=10))
    bad = {**good, "seed": 2, R.STATUS: R.FAILED, R.ERROR: "boom", **R.failed_checks()}
    fits = fits_table([good, bad], reference={R.SIGMA_B: {"mean": 0.4, "mcse": 0.01}})
    assert list(R.ran_ok(fits)) == [True, False] and list(R.passing(fits)) == [good[R.PASS_ALL], False]
    assert R.z_column(R.SIGMA_B) in fits and R.Z_COLUMNS[0] == "z_sigma_b"
    readable = readable_summary(summarize(fits))
    assert [c.summary_label for c in R.CHECKS] + [R.PASS_ALL_LABEL] == list(readable.columns[-5:])
    assert list(R.truthy(pd.Series([True, "True", "false", None, 1.0]))) == [True, True, False, False, True]


@pytest.mark.parametrize(
    "module",
    ["records", "priors", "errors", "config", "verdict_rule", "verdict", "verdict_text", "index_page", "report"],
)
def test_each_module_imports_alone(module):
    """No import circle: each module imports in a fresh interpreter on its own."""
    import os
    import subprocess
    import sys

    from conftest import ROOT

    env = {**os.environ, "PYTHONPATH": str(ROOT / "workflow")}
    proc = subprocess.run([sys.executable, "-c", f"import funnel.{module}"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr


def test_the_speed_columns_are_each_scales_ess_per_second_and_their_minimum():
    record = fit_diagnostics(fake_trace(2), "BETA")
    seconds = record["sampling_seconds"]
    rates = [record[R.ess_column("bulk", s)] / seconds for s in R.GROUP_SCALES]
    assert [record[R.per_s_column(s)] for s in R.GROUP_SCALES] == pytest.approx(rates)
    assert record[R.SLOWEST_SCALE_PER_S] == pytest.approx(min(rates))
    assert record["ess_bulk_sigma_b_per_s"] == pytest.approx(rates[1])  # kept: tables and notebooks read it
    assert R.scale_speeds({**record, "sampling_seconds": 0.0})[R.SLOWEST_SCALE_PER_S] is None
    assert R.scale_speeds({**record, "ess_bulk_sigma_a": None})[R.SLOWEST_SCALE_PER_S] is None
    table = R.with_scale_speeds(pd.DataFrame([record]).drop(columns=[R.SLOWEST_SCALE_PER_S]))
    assert table[R.SLOWEST_SCALE_PER_S].iloc[0] == pytest.approx(min(rates))
