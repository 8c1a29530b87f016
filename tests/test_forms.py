"""The registry of forms (funnel.forms) and the partial form (funnel.partial): its rule, its pilot, its model."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import VALUE_MODE as MODE
from funnel import records as R
from funnel.datasets import ModelData
from funnel.forms import EFFECTS, FORMS, NAMES, Centering, form
from funnel.models import FORM_NAMES, MODELS, build_model
from funnel.partial import (
    INTERCEPT_THRESHOLD,
    SLOPE_THRESHOLD,
    centered_groups,
    partial_centering,
    pilot,
    slope_information,
)
from funnel.plots.style import FORM_COLORS
from funnel.verdict_text import headline
from scipy import stats


# --------------------------------------------------------------------------- the registry
def test_every_reader_takes_the_forms_from_the_registry():
    assert MODELS == NAMES == ("centered", "noncentered", "partial")
    assert FORM_NAMES == {name: f.prose for name, f in FORMS.items()}
    assert FORM_COLORS == {name: f.color for name, f in FORMS.items()}
    assert len(set(FORM_COLORS.values())) == len(FORMS)  # one colour per form
    assert headline("noncentered") == "Use the non-centered form"
    assert headline("partial") == "Use the partially centered form"


def test_an_unknown_form_is_named_with_the_registered_ones():
    with pytest.raises(ValueError, match="unknown model 'funnel'; choose one of centered, noncentered, partial"):
        form("funnel")


# --------------------------------------------------------------------------- the rule, on a constructed dataset
def constructed(sizes=(1, 2, 10, 50), spreads=(0.0, 1.0, 0.0, 2.0)) -> ModelData:
    """Groups of the given sizes; group g's x alternates ±spread_g around 3 (S_g = n_g · spread_g²)."""
    idx = np.repeat(np.arange(len(sizes)), sizes)
    x = np.concatenate([3 + s * np.where(np.arange(n) % 2 == 0, 1.0, -1.0) for n, s in zip(sizes, spreads)])
    y = np.zeros(idx.size)
    labels = tuple(f"g{i}" for i in range(len(sizes)))
    return ModelData("g", labels, idx, x, y)


def test_the_rule_centers_exactly_the_groups_whose_data_outweigh_the_prior():
    data = constructed()
    # n = 1, 2, 10, 50; with x alternating ±s: S = 0, 2, 0 (s = 0), 50·4 = 200 (n even: mean exactly 3).
    assert slope_information(data) == pytest.approx([0.0, 2.0, 0.0, 200.0])
    # eps = 1, sigma_a = 0.5: n·sigma_a²/eps² = 0.25, 0.5, 2.5, 12.5 -> groups 2 and 3 centered.
    # sigma_b = 0.2: S·sigma_b²/eps² = 0, 0.08, 0, 8 -> only group 3 beyond SLOPE_THRESHOLD (4).
    masks = centered_groups(data, eps=1.0, sigma_a=0.5, sigma_b=0.2)
    assert np.flatnonzero(masks["a"]).tolist() == [2, 3]
    assert np.flatnonzero(masks["b"]).tolist() == [3]
    # The thresholds are the documented ones, and the boundary is strict.
    assert (INTERCEPT_THRESHOLD, SLOPE_THRESHOLD) == (1.0, 4.0)
    at_boundary = centered_groups(data, eps=1.0, sigma_a=np.sqrt(0.1), sigma_b=0.2)  # group 2: 10·0.1 = 1
    assert np.flatnonzero(at_boundary["a"]).tolist() == [3]
    # A larger residual scale centers fewer; a group without x variation never has its slope centered.
    assert not centered_groups(data, eps=10.0, sigma_a=0.5, sigma_b=0.2)["a"].any()
    assert not centered_groups(data, eps=1e-3, sigma_a=0.5, sigma_b=0.2)["b"][[0, 2]].any()


def simulated(seed: int = 3) -> tuple[ModelData, dict[str, float]]:
    """Groups of 1 to 40 rows from the model with known hyperparameters."""
    rng = np.random.default_rng(seed)
    truth = {"mu_a": 1.0, "sigma_a": 0.8, "mu_b": -0.5, "sigma_b": 0.3, "eps": 1.5}
    sizes = np.repeat([1, 2, 5, 10, 20, 40], 8)
    idx = np.repeat(np.arange(sizes.size), sizes)
    a = rng.normal(truth["mu_a"], truth["sigma_a"], sizes.size)
    b = rng.normal(truth["mu_b"], truth["sigma_b"], sizes.size)
    x = rng.normal(0.0, 1.0, idx.size)
    y = a[idx] + b[idx] * x + rng.normal(0.0, truth["eps"], idx.size)
    return ModelData("clinic", tuple(f"c{i:02d}" for i in range(sizes.size)), idx, x, y, dataset="sim"), truth


def test_the_pilot_is_deterministic_cheap_and_near_the_truth():
    data, truth = simulated()
    first, second = pilot(data), pilot(data)
    assert first == second
    for name in ("sigma_a", "sigma_b", "eps"):
        assert first[name] == pytest.approx(truth[name], rel=0.35), name
    centering = Centering(*partial_centering(data))
    assert centering.record["pilot_seconds"] < 2.0
    # n_g · 0.8² / 1.5² > 1 from n_g = 4: the groups of 5 rows and more are centered, those of 1 and 2 are not;
    # the slopes (S_g ≈ n_g, S_g · 0.3² / 1.5² > 4 from S_g = 100) none.
    n = np.bincount(data.group_idx)
    a = centering.centered["a"]
    assert centering.record["centered_a"] == int(a.sum()) == int((n >= 5).sum())
    assert a[n >= 5].all() and not a[n <= 2].any()
    assert centering.record["centered_b"] == 0 and not centering.centered["b"].any()


def test_a_single_hierarchy_without_information_centers_nothing():
    """sigma_a -> 0 at the pilot (no spread between groups): every group non-centered."""
    rng = np.random.default_rng(0)
    idx = np.repeat(np.arange(6), 5)
    x = rng.normal(size=idx.size)
    data = ModelData("g", tuple("uvwxyz"), idx, x, 2.0 + 0.1 * x + rng.normal(0, 1.0, idx.size))
    masks = partial_centering(data)[0]
    assert not masks["a"].any() and not masks["b"].any()


# --------------------------------------------------------------------------- the mixed model
pm = pytest.importorskip("pymc")


def test_a_mixed_centering_builds_the_right_density_and_keeps_a_and_b():
    """Groups 0 and 2 of a centered, group 1 non-centered; b all non-centered: the log density at a fixed point is
    the SciPy sum of the centered part, the offsets and the likelihood; a and b are deterministics over the groups."""
    data = constructed(sizes=(3, 4, 5), spreads=(1.0, 1.0, 1.0))
    data = ModelData("g", data.groups, data.group_idx, data.x, np.linspace(-1, 2, data.x.size))
    mixed = Centering({"a": np.array([True, False, True]), "b": np.zeros(3, bool)})
    model = build_model(data, "partial", "weakly_informative", centering=mixed)
    assert model.centering is mixed
    assert [rv.name for rv in model.free_RVs] == ["mu_a", "sigma_a", "mu_b", "sigma_b", "eps", "a_centered", "a_offset", "b_offset"]  # fmt: skip
    assert {d.name for d in model.deterministics} == {"a", "b"}
    assert model.named_vars_to_dims["a"] == model.named_vars_to_dims["b"] == ("g",)
    hyper = {"mu_a": 0.3, "sigma_a": 0.7, "mu_b": -0.2, "sigma_b": 0.4, "eps": 0.9}
    a_c, a_z, b_z = np.array([1.1, -0.4]), np.array([0.6]), np.array([0.2, -1.0, 0.5])
    point = {"mu_a": 0.3, "mu_b": -0.2, "a_centered": a_c, "a_offset": a_z, "b_offset": b_z}
    point.update({f"{s}_log__": np.log(hyper[s]) for s in ("sigma_a", "sigma_b", "eps")})
    a = np.array([a_c[0], hyper["mu_a"] + hyper["sigma_a"] * a_z[0], a_c[1]])
    b = hyper["mu_b"] + hyper["sigma_b"] * b_z
    got_a, got_b = model.compile_fn(
        model.replace_rvs_by_values([model["a"], model["b"]]),
        inputs=model.value_vars,
        on_unused_input="ignore",
        mode=MODE,
    )(point)
    assert got_a == pytest.approx(a) and got_b == pytest.approx(b)
    expected_groups = (
        stats.norm(hyper["mu_a"], hyper["sigma_a"]).logpdf(a_c).sum()
        + stats.norm(0, 1).logpdf(a_z).sum()
        + stats.norm(0, 1).logpdf(b_z).sum()
    )
    mean = a[data.group_idx] + b[data.group_idx] * data.x
    expected_y = stats.norm(mean, hyper["eps"]).logpdf(data.y).sum()
    rvs = ["a_centered", "a_offset", "b_offset", "y"]
    fn = model.compile_fn(
        [model.logp(vars=[model[n]], jacobian=False) for n in rvs], inputs=model.value_vars, mode=MODE
    )
    terms = dict(zip(rvs, map(float, fn(point))))
    assert terms["a_centered"] + terms["a_offset"] + terms["b_offset"] == pytest.approx(expected_groups, rel=1e-10)
    assert terms["y"] == pytest.approx(expected_y, rel=1e-10)


@pytest.mark.parametrize(("centered", "free"), [(True, ["a", "b"]), (False, ["a_offset", "b_offset"])])
def test_a_uniform_centering_is_the_whole_form_exactly(centered, free):
    """The partial form with every group centered (or none) is the centered (non-centered) model, variable for
    variable: the two whole forms are special cases of one builder."""
    data, _ = simulated()
    uniform = Centering({e: np.full(data.n_groups, centered) for e in EFFECTS})
    model = build_model(data, "partial", "auto", centering=uniform)
    whole = build_model(data, "centered" if centered else "noncentered", "auto")
    assert [rv.name for rv in model.free_RVs][5:] == free
    assert [rv.name for rv in model.free_RVs] == [rv.name for rv in whole.free_RVs]
    point = whole.initial_point()
    logp, logp_whole = model.compile_logp(mode=MODE), whole.compile_logp(mode=MODE)
    assert float(logp(point)) == pytest.approx(float(logp_whole(point)), rel=1e-12)


def test_the_partial_forms_split_goes_into_the_record():
    from funnel.diagnostics import fit_diagnostics
    from test_records import fake_trace

    idata = fake_trace()
    split = {"centered_a": 39, "centered_b": 0, "pilot_eps": 0.75, "pilot_sigma_a": 0.33, "pilot_sigma_b": 0.28}
    idata.posterior.attrs.update(model="partial", pilot_seconds=0.03, **split)
    record = fit_diagnostics(idata, "BETA", bias_groups=["GAMMA"], sigma_b_small=0.25)
    fields = R.fields("BETA", 0.25, ["GAMMA"], model="partial")
    assert list(record) == [f.name for f in fields] and R.check_record(record, fields) == []
    assert {k: record[k] for k in split} == split and isinstance(record["centered_a"], int)
    # The whole forms' records are as they were: no split fields.
    plain = fit_diagnostics(fake_trace(), "BETA", bias_groups=["GAMMA"], sigma_b_small=0.25)
    assert not set(split) & set(plain)


def test_the_report_states_a_partial_fits_split_and_nothing_for_a_whole_form():
    from funnel.forms import split_text

    record = {"model": "partial", "centered_a": 39, "centered_b": 0, "pilot_eps": 0.748, "pilot_sigma_a": 0.327}
    assert split_text(record) == ""  # incomplete: no sentence rather than a wrong one
    record.update(pilot_sigma_b=0.282, pilot_seconds=0.06)
    text = split_text(record)
    assert text.startswith(" Partially centered: the intercepts of 39 groups and the slopes of 0 are sampled centered")
    assert "n_g·σ_a²/eps² > 1" in text and "> 4" in text and "eps 0.748" in text
    assert split_text({"model": "noncentered", "centered_a": 3}) == ""


@pytest.mark.slow
def test_the_same_data_and_seed_give_the_same_partial_draws(tmp_path):
    """Two jobs (two builds, each with its own pilot) sample seed 5 of the partial form to the same draws, and keep a
    and b over every group; the trace's attributes carry the split the record reads."""
    from funnel.fitting import BatchSampler, FitSettings

    data, _ = simulated()
    settings = FitSettings(sampler="nutpie", model="partial", chains=1, tune=100, draws=50, priors="auto")
    first, second = (BatchSampler(data, settings, log=lambda m: None).sample(5) for _ in range(2))
    for name in ("sigma_a", "sigma_b", "a", "b", "a_centered", "a_offset"):
        np.testing.assert_array_equal(first.posterior[name].values, second.posterior[name].values)
    assert first.posterior["a"].dims[-1] == "clinic" and first.posterior["a"].shape[-1] == data.n_groups
    attrs = first.posterior.attrs
    assert attrs["model"] == "partial" and attrs["centered_a"] == int((np.bincount(data.group_idx) >= 5).sum())


def test_a_lean_trace_keeps_a_mixed_effect_and_rebuilds_a_whole_one(tmp_path):
    """fit.store_deterministics: false drops b (its offsets rebuild it) but keeps the mixed a, which offsets alone
    cannot rebuild; reading the trace back gives both over every group."""
    import arviz as az
    from funnel.fitting import write_trace
    from funnel.models import with_deterministics

    rng = np.random.default_rng(1)
    post = {
        "mu_a": rng.normal(size=(1, 4)),
        "sigma_a": rng.uniform(1, 2, (1, 4)),
        "mu_b": rng.normal(size=(1, 4)),
        "sigma_b": rng.uniform(1, 2, (1, 4)),
        "a_centered": rng.normal(size=(1, 4, 2)),
        "a_offset": rng.normal(size=(1, 4, 1)),
        "b_offset": rng.normal(size=(1, 4, 3)),
    }
    post["a"] = rng.normal(size=(1, 4, 3))
    post["b"] = post["mu_b"][..., None] + post["b_offset"] * post["sigma_b"][..., None]
    dims = {"a": ["g"], "b": ["g"], "b_offset": ["g"], "a_centered": ["c"], "a_offset": ["n"]}
    idata = az.from_dict(posterior=post, coords={"g": ["u", "v", "w"]}, dims=dims)
    write_trace(idata, tmp_path / "lean.nc", deterministics=False)
    lean = az.from_netcdf(tmp_path / "lean.nc").posterior
    assert "a" in lean and "b" not in lean
    full = with_deterministics(lean)
    np.testing.assert_allclose(full["a"].values, post["a"])
    np.testing.assert_allclose(full["b"].values, post["b"])


def test_the_partial_forms_store_key_holds_its_rule_and_the_whole_forms_keys_are_unchanged(monkeypatch):
    from funnel import partial
    from funnel.fitting import FitSettings, settings_key

    def key(model: str) -> dict:
        return settings_key(FitSettings(sampler="nutpie", model=model), "radon", "abc")

    assert "form_rule" not in key("centered") and "form_rule" not in key("noncentered")
    before = key("partial")
    assert before["form_rule"]["slope"] == 4.0 and before["form_rule"]["intercept"] == 1.0
    monkeypatch.setattr(partial, "SLOPE_THRESHOLD", 2.0)
    assert key("partial") != before  # a changed rule refits instead of reusing the old draws


def test_the_sbc_and_map_store_keys_hold_the_partial_rule_and_the_whole_forms_keys_are_unchanged(monkeypatch, tmp_path):
    """funnel.forms.rule_key is the one helper every form-specific store key adds: the fit's, the SBC record's and
    the MAP point's. A changed partial threshold changes the partial form's keys; the whole forms' keys are
    byte-identical to those before forms had rules (pinned: existing stores stay valid)."""
    from funnel import partial
    from funnel.batch import MapBatch
    from funnel.fitting import FitSettings
    from funnel.forms import rule_key
    from funnel.sbc import SBCSettings
    from funnel.store import fit_key

    def sbc_key(model: str) -> str:
        settings = FitSettings(sampler="pymc", model=model, chains=2, tune=100, draws=100, target_accept=0.9,
                               priors="auto", backend="numba", threads=1)  # fmt: skip
        parts = SBCSettings(dataset="toy", fit=settings).key_parts()
        return fit_key({"table_sha256": "abc", **parts, "record_version": 1, "simulation": 3})

    map_parts = {"kind": "map", "dataset": "d", "table_sha256": "abc", "priors": "blog", "seed": 0,
                 "method": "L-BFGS-B", "versions": {"pymc": "x"}}  # fmt: skip

    def map_keys() -> dict[str, str]:
        outputs = {m: tmp_path / "map" / f"{m}.json" for m in NAMES}
        return MapBatch(outputs=outputs, key_parts=map_parts, compute=lambda m: {}, log=lambda _: None).keys

    # The whole forms: no rule, and the keys of before (computed with the code before rule_key).
    assert rule_key("centered") == rule_key("noncentered") == rule_key("unknown") == {}
    assert (sbc_key("centered"), sbc_key("noncentered")) == ("07be5647c0331627", "fb75f5038a606931")
    before = map_keys()
    assert (before["centered"], before["noncentered"]) == ("0299b54d941082fb", "8b791692755e2b40")
    assert before["centered"] == fit_key({**map_parts, "model": "centered"})
    # The partial form: its rule is in every key, and a changed threshold changes each.
    assert rule_key("partial")["form_rule"]["intercept"] == partial.INTERCEPT_THRESHOLD
    assert before["partial"] != fit_key({**map_parts, "model": "partial"})
    sbc_partial = sbc_key("partial")
    monkeypatch.setattr(partial, "INTERCEPT_THRESHOLD", 2.0)
    assert sbc_key("partial") != sbc_partial
    after = map_keys()
    assert after["partial"] != before["partial"]
    assert (sbc_key("centered"), after["centered"], after["noncentered"]) == (
        "07be5647c0331627", before["centered"], before["noncentered"]
    )  # fmt: skip


def sleepstudy_shaped(seed: int = 4) -> ModelData:
    """18 subjects × 10 days (x = 0..9), reaction-time scales (sleepstudy): every subject's data pin down both its
    intercept and its slope, so the partial form's rule centers every subject."""
    rng = np.random.default_rng(seed)
    idx = np.repeat(np.arange(18), 10)
    x = np.tile(np.arange(10.0), 18)
    a, b = rng.normal(250.0, 25.0, 18), rng.normal(10.0, 6.0, 18)
    y = a[idx] + b[idx] * x + rng.normal(0.0, 25.0, idx.size)
    return ModelData("Subject", tuple(f"s{i}" for i in range(18)), idx, x, y, dataset="sleep")


def test_where_the_rule_centers_every_group_the_partial_form_is_the_centered_model():
    """As on sleepstudy: the rule centers all 18 subjects (both effects), and build_model(..., 'partial') with the
    rule's own centering (no centering handed in) has the centered model's free variables and log density. So a
    partial fit there samples exactly the centered model (bench/forms_bench.py's identical draws)."""
    data = sleepstudy_shaped()
    masks, record = partial_centering(data)
    assert masks["a"].all() and masks["b"].all() and (record["centered_a"], record["centered_b"]) == (18, 18)
    model = build_model(data, "partial", "auto")
    centered = build_model(data, "centered", "auto")
    assert [rv.name for rv in model.free_RVs] == [rv.name for rv in centered.free_RVs]
    assert [v.name for v in model.value_vars] == [v.name for v in centered.value_vars]
    logp, logp_c = model.compile_logp(mode=MODE), centered.compile_logp(mode=MODE)
    rng = np.random.default_rng(0)
    for shift in (0.0, 0.3):  # the initial point and a random one near it
        point = {k: v + shift * rng.normal(size=np.shape(v)) for k, v in centered.initial_point().items()}
        assert float(logp(point)) == pytest.approx(float(logp_c(point)), rel=1e-12)


def test_the_forms_bench_reports_identical_draws_and_the_max_abs_z_per_form():
    """bench/forms_bench.py's tables from per-seed rows: the partial ÷ better-whole ratio says when the partial draws
    equal the centered ones (timing only), and the max |z| per dataset × sampler × form is checked against 4."""
    import importlib.util

    import pandas as pd
    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("forms_bench", ROOT / "bench" / "forms_bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = []
    for name, speed, same in (("centered", 100.0, np.nan), ("noncentered", 40.0, np.nan), ("partial", 90.0, 1.0)):
        for seed, z in ((1, 0.5), (2, 4.5 if name == "noncentered" else 1.0)):
            row = {"dataset": "sleep", "sampler": "nutpie", "form": name, "seed": seed}
            row |= {f"ess_s_{h}": speed for h in (*bench.HYPERPARAMETERS, "slowest_scale")}
            row |= {"same_draws_as_centered": same, "abs_z_sigma_b": z, "abs_z_log_sigma_b": 0.1, "abs_z_b[308]": 2.0}
            rows.append(row)
    table = pd.DataFrame(rows)
    (ratio,) = bench.ratios(table).to_dict("records")
    assert ratio["ess_s_sigma_b"] == 0.9 and ratio["partial vs centered"].endswith("the ratio is sampling time only")
    table.loc[table["form"].eq("partial") & table["seed"].eq(2), "same_draws_as_centered"] = 0.0
    assert bench.ratios(table)["partial vs centered"].iloc[0] == "same draws as centered on 1 of 2 seeds"
    z = bench.z_table(table)
    assert list(z["all < 4"]) == [True, False, True]
    assert z.loc[("sleep", "nutpie", "noncentered"), "max|z| E[σ_b]"] == 4.5
    assert (z["max|z| tracked slope"] == 2.0).all()


def test_the_forms_bench_threshold_options_reach_the_partial_forms_split(monkeypatch):
    """bench/forms_bench.py --intercept-threshold / --slope-threshold set funnel.partial's thresholds for the run, so
    the partial form's split (and its store key) follows them; a negative threshold is refused."""
    import importlib.util

    from conftest import ROOT
    from funnel import partial
    from funnel.forms import rule_key

    spec = importlib.util.spec_from_file_location("forms_bench", ROOT / "bench" / "forms_bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    for name in ("INTERCEPT_THRESHOLD", "SLOPE_THRESHOLD"):
        monkeypatch.setattr(partial, name, getattr(partial, name))  # restored after the test
    data, _ = simulated()
    n = np.bincount(data.group_idx)
    bench.parse_args([])
    default = partial_centering(data)[1]
    assert (default["centered_a"], default["centered_b"]) == (int((n >= 5).sum()), 0)  # the simulated table's split
    args = bench.parse_args(["--intercept-threshold", "4", "--slope-threshold", "0"])
    assert (args.intercept_threshold, args.slope_threshold) == (4.0, 0.0)
    masks, record = partial_centering(data)
    # n_g · 0.8² / 1.5² ≈ 0.28 n_g > 4 from about n_g = 15: only the groups of 20 and 40 rows; every slope with
    # S_g > 0 (not the 8 groups of one row).
    assert 0 < record["centered_a"] < default["centered_a"] and masks["a"][n <= 10].sum() == 0
    assert record["centered_b"] == int((slope_information(data) > 0).sum()) == data.n_groups - 8
    assert rule_key("partial")["form_rule"]["intercept"] == 4.0
    with pytest.raises(SystemExit):
        bench.parse_args(["--slope-threshold", "-1"])
