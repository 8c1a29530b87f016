"""A dataset's model spec (funnel.spec, issue 26 step 2): the shorthand's is the model funnel.models builds, a
formula dataset's is read from its cleaned table, and a fit of it goes through BatchSampler and the diagnostics.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest
from conftest import CBPP
from conftest import VALUE_MODE as MODE
from funnel import datasets
from funnel.datasets import ModelData
from funnel.diagnostics import glm_diagnostics
from funnel.errors import DataError
from funnel.fitting import BatchSampler, FitSettings
from funnel.forms import NAMES
from funnel.models import build_model
from funnel.records import DEFAULT_THRESHOLDS, SLOWEST_SCALE_PER_S, check_record, glm_fields
from funnel.spec import load_spec, shorthand_spec


def unequal_groups() -> ModelData:
    rng = np.random.default_rng(3)
    idx = np.repeat(np.arange(6), [1, 2, 3, 8, 12, 20])
    x = rng.normal(size=idx.size)
    y = 0.5 * idx + (0.3 + 0.1 * idx) * x + rng.normal(scale=0.5, size=idx.size)
    return ModelData("site", tuple(f"s{i}" for i in range(6)), idx, x, y, dataset="toy", track_group="s0")


@pytest.mark.parametrize("form", NAMES)
@pytest.mark.parametrize("priors", ["blog", "auto"])
def test_the_shorthand_spec_builds_the_models_own_model(form, priors):
    data = unequal_groups()
    spec = shorthand_spec(data, priors)
    built, expected = spec.build(form), build_model(data, form, priors)
    assert [v.name for v in built.free_RVs] == [v.name for v in expected.free_RVs]
    point = expected.initial_point()
    rng = np.random.default_rng(0)
    point = {k: v + rng.normal(scale=0.3, size=np.shape(v)) for k, v in point.items()}
    assert built.compile_logp(mode=MODE)(point) == pytest.approx(expected.compile_logp(mode=MODE)(point), rel=1e-12)
    assert spec.track_levels == {"site": "s0"} and spec.structure.effects == ("a", "b")


@pytest.fixture(scope="module")
def cbpp(tmp_path_factory):
    """lme4's cbpp through the clean step, written as the workflow writes it."""
    folder = tmp_path_factory.mktemp("cbpp")
    spec = datasets.resolve_spec("cbpp", CBPP)
    datasets.acquire("cbpp", spec, folder / "source", log=lambda _: None)
    table, record = datasets.clean("cbpp", spec, folder / "source", log=lambda _: None)
    datasets.write_clean(table, record, folder / "table.csv", folder / "provenance.json")
    return folder, record


def test_a_formula_spec_is_read_from_the_cleaned_table(cbpp):
    folder, record = cbpp
    spec = load_spec(folder / "table.csv", folder / "provenance.json")
    assert spec.family == "binomial" and spec.track_levels == {"herd": record["track_group"]}
    assert spec.structure.scales == ("sigma_1|herd",) and spec.effect_dims == {"1|herd": "herd"}
    model = spec.build("centered")
    assert set(model.coords["herd"]) == {str(h) for h in range(1, 16)}  # the herds, labelled as in the table
    assert "1|herd" in {v.name for v in model.free_RVs}  # centered: the herds' effects sampled directly
    assert "1|herd_offset" in {v.name for v in spec.build("noncentered").free_RVs}
    with pytest.raises(DataError, match="the 'partial' form is not available for a formula model"):
        spec.build("partial")


def bulk_ess(values) -> float:
    return float(np.asarray(az.ess(values, method="bulk").to_array()).squeeze())


@pytest.mark.slow
def test_a_formula_fit_goes_through_the_batch_sampler_and_the_diagnostics(cbpp):
    folder, record = cbpp
    spec = load_spec(folder / "table.csv", folder / "provenance.json")
    settings = FitSettings(sampler="nutpie", model="noncentered", chains=2, tune=300, draws=300, priors="auto")
    idata = BatchSampler(spec, settings, log=lambda _: None).sample(seed=5)
    row = glm_diagnostics(idata, spec, DEFAULT_THRESHOLDS)
    herd = record["track_group"]
    post = idata.posterior
    # every statistic is ArviZ's, of the right variable at the tracked herd
    assert row["ess_bulk_sigma_1|herd"] == pytest.approx(bulk_ess(post["sigma_1|herd"]))
    assert row[f"ess_bulk_1|herd_{herd}"] == pytest.approx(bulk_ess(post["1|herd"].sel(herd=herd)))
    assert row[f"ess_bulk_1|herd_{herd}"] != pytest.approx(bulk_ess(post["1|herd"].isel(herd=0)))  # not any herd
    assert row["mean_sigma_1|herd"] == pytest.approx(float(post["sigma_1|herd"].mean()))
    assert row["rhat_max"] >= row["rhat_sigma_1|herd"] > 0.9
    assert row[SLOWEST_SCALE_PER_S] == pytest.approx(row["ess_bulk_sigma_1|herd"] / row["sampling_seconds"])
    assert row["divergences"] == int(idata.sample_stats["diverging"].values.sum())
    assert isinstance(row["pass_all"], bool) and row["track_levels"] == f"herd={herd}"
    # the record has exactly the fields records.glm_fields declares, with their types, in their order
    declared = glm_fields(spec.structure, {"1|herd": herd}, "noncentered")
    assert check_record(row, declared) == [] and list(row) == [f.name for f in declared]
    # the herds' effects are the noncentered deterministic mean + offset * sigma, centered on the intercept
    assert float(post["sigma_1|herd"].mean()) > 0.2  # cbpp's herds vary (lme4: sd 0.64 on the logit scale)
