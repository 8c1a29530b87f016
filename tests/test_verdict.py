"""The verdict (workflow/funnel/verdict.py, its words in verdict_text.py) on constructed per-seed tables,
one per outcome of the rule."""

from __future__ import annotations

import html
import json
import math

import numpy as np
import pandas as pd
import pytest
from funnel import verdict as V
from funnel import verdict_text as T
from scipy import stats


def rows(
    sampler: str,
    model: str,
    *,
    divergences,
    ess,
    ess_per_s,
    means,
    mcse=0.01,
    pass_all=None,
    status=None,
    dataset: str = "trial",
) -> list[dict]:
    """One row per seed; every per-seed argument is a list of one value per seed (or a scalar for all)."""
    n = len(means)

    def each(value):
        return list(value) if isinstance(value, list | tuple | np.ndarray) else [value] * n

    divergences, ess, ess_per_s, mcse = each(divergences), each(ess), each(ess_per_s), each(mcse)
    if pass_all is None:
        pass_all = [d == 0 and e >= 400 for d, e in zip(divergences, ess)]
    pass_all, status = each(pass_all), each(status)
    out = []
    for i in range(n):
        row = {
            "dataset": dataset,
            "sampler": sampler,
            "model": model,
            "seed": i + 1,
            "divergences": divergences[i],
            "pass_all": pass_all[i],
            "pass_divergences": divergences[i] == 0,
            "pass_ess": ess[i] >= 400,
            "pass_rhat": True,
            "pass_bfmi": True,
            "ess_bulk_sigma_b": ess[i],
            "ess_bulk_sigma_b_per_s": ess_per_s[i],
            "mean_sigma_b": means[i],
            "mcse_mean_sigma_b": mcse[i],
            "sampling_seconds": ess[i] / ess_per_s[i],
        }
        if status[i] is not None:
            row["status"] = status[i]
            if status[i] != "ok":  # a failed fit has no diagnostics
                for key in row:
                    if key not in ("dataset", "sampler", "model", "seed", "status"):
                        row[key] = None
        out.append(row)
    return out


def spread(mean: float, sd: float, n: int) -> np.ndarray:
    """n values with exactly this mean and sample standard deviation (evenly spaced)."""
    base = np.linspace(-1.0, 1.0, n)
    return mean + sd * (base - base.mean()) / base.std(ddof=1)


def frame(*groups: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([row for group in groups for row in group])


REF = {"mean": 0.2772, "mcse": 0.001}


def radon_like() -> pd.DataFrame:
    """Centered: divergences on every seed, poor ESS, E[σ_b] high; non-centered: clean, on the reference."""
    n = 8
    out = []
    for sampler, speed in (("pymc", 1.0), ("nutpie", 6.0)):
        out += rows(
            sampler,
            "centered",
            divergences=[12, 30, 7, 55, 21, 9, 40, 18],
            ess=[45, 80, 60, 30, 120, 70, 55, 90],
            ess_per_s=[x * speed for x in (4, 7, 5, 2, 11, 6, 5, 8)],
            means=list(spread(0.2931, 0.010, n)),
            mcse=0.02,
        )
        out += rows(
            sampler,
            "noncentered",
            divergences=0,
            ess=[1100, 950, 1200, 1010, 990, 1300, 1050, 1150],
            ess_per_s=[x * speed for x in (140, 120, 150, 130, 125, 160, 135, 145)],
            means=list(spread(0.2775, 0.006, n)),
            mcse=0.004,
        )
    return pd.DataFrame(out)


def sleepstudy_like() -> pd.DataFrame:
    """Both forms clean (0 divergences); the centered ESS(σ_b) about 2.8× the non-centered one's."""
    n = 8
    nc_ess = np.array([300.0, 320, 280, 310, 290, 305, 295, 315])
    out = []
    for sampler, speed in (("pymc", 0.3), ("nutpie", 4.0)):
        out += rows(
            sampler,
            "centered",
            divergences=0,
            ess=list(2.8 * nc_ess + 400),  # all above 400 as well
            ess_per_s=list(2.8 * speed * nc_ess),
            means=list(spread(6.21, 0.07, n)),
            pass_all=True,
        )
        out += rows(
            sampler,
            "noncentered",
            divergences=0,
            ess=list(nc_ess + 400),
            ess_per_s=list(speed * nc_ess),
            means=list(spread(6.20, 0.07, n)[::-1]),
            pass_all=True,
        )
    return pd.DataFrame(out)


# ---------------------------------------------------------------- the four outcomes
def test_radon_shaped_table_recommends_the_noncentered_form_with_and_without_a_reference():
    fits = radon_like()
    for reference in (REF, None):
        v = V.compute_verdict(fits, reference)
        assert v.dataset == "trial"
        assert v.recommendation == "noncentered", v.reason
        assert [s.recommendation for s in v.samplers] == ["noncentered", "noncentered"]
        c = v.form("pymc", "centered")
        assert not c.passes and c.passing == 0 and c.share_pass == 0
        assert c.median_divergences == 19.5 and c.median_ess_bulk_sigma_b == 65
        assert "0 of 8 seeds pass every check" in c.reasons[0] and "divergences on 8" in c.reasons[0]
        nc = v.form("nutpie", "noncentered")
        assert nc.passes and nc.share_pass == 1 and nc.median_ess_per_s == pytest.approx(6 * 137.5)
        # No centered seed is clean: the ratio is over the seeds that ran, for reading (no interval).
        assert v.sampler("pymc").ratio_ess_per_s == pytest.approx(137.5 / 5.5)
        assert np.isnan(c.median_ess_per_s) and c.median_ess_per_s_ran == 5.5
        assert all(np.isnan(v.sampler("pymc").ratio_interval))
        assert v.reason == "Only the non-centered form passes with every sampler."
        assert [line.split(":")[0] for line in v.failures] == ["centered with nutpie", "centered with pymc"]
    # With the reference the centered form's E[σ_b] is high (t = 4.3, p = 0.0035), but a form's tests with every
    # sampler are one family: 2 tests (t and χ² of E[σ_b], the only estimand this table has) × 2 samplers, each
    # at 0.01/4. The form fails on its checks alone.
    v = V.compute_verdict(fits, REF)
    c = v.form("pymc", "centered")
    assert c.bias.t > 4 and 0.0025 < c.bias.p < 0.01 and (c.bias_family, c.bias_level) == (4, 0.01 / 4)
    assert len(c.reasons) == 1 and c.reasons[0].startswith("0 of 8 seeds pass every check")
    assert not v.form("pymc", "noncentered").bias.significant()


def test_sleepstudy_shaped_table_recommends_the_centered_form():
    v = V.compute_verdict(sleepstudy_like())
    assert v.recommendation == "centered", v.reason
    for s in v.samplers:
        assert s.recommendation == "centered"
        assert s.ratio_ess_per_s == pytest.approx(1 / 2.8)
        assert not s.between.significant()
    assert v.ratio_ess_per_s == pytest.approx(1 / 2.8)
    assert all(f.passes and f.median_divergences == 0 for f in v.forms)
    assert "2.8× the median ESS per second of the slowest group-level scale" in v.reason
    assert T.ratio_text(v.ratio_ess_per_s) == "2.8× centered"


def test_neither_passes_when_both_forms_fail_and_the_reason_names_what_failed():
    fits = radon_like()
    low = fits["model"].eq("noncentered")
    fits.loc[low, "ess_bulk_sigma_b"] = 150.0
    fits.loc[low, "pass_ess"] = False
    fits.loc[low, "pass_all"] = False
    v = V.compute_verdict(fits, REF)
    assert v.recommendation == V.NEITHER
    assert [s.recommendation for s in v.samplers] == [V.NEITHER, V.NEITHER]
    assert v.reason == "No form passes with every sampler."
    assert len(v.failures) == 4 and v.failures[0].startswith("centered with nutpie: 0 of 8 seeds")
    assert "non-centered with nutpie: 0 of 8 seeds pass every check (none clean); seeds failing ESS on 8" in v.failures


@pytest.mark.parametrize(("speedup", "expected"), [(1.3, V.EITHER), (1 / 1.45, V.EITHER), (1.6, "noncentered")])
def test_either_when_both_pass_and_their_ess_per_second_are_within_the_factor(speedup, expected):
    fits = sleepstudy_like()
    nc = fits["model"].eq("noncentered")
    c_rate = fits.loc[~nc].groupby("sampler")["ess_bulk_sigma_b_per_s"].median()
    fits.loc[nc, "ess_bulk_sigma_b_per_s"] = fits.loc[nc, "sampler"].map(c_rate) * speedup
    v = V.compute_verdict(fits)
    assert V.ESS_FACTOR == 1.5
    assert v.recommendation == expected, v.reason
    assert v.ratio_ess_per_s == pytest.approx(speedup)
    if expected == V.EITHER:
        assert v.reason.startswith("Both forms pass with every sampler, and their median ESS per second of the slowest")


def test_samplers_that_prefer_opposite_forms_give_either_overall():
    fits = sleepstudy_like()
    nc = fits["model"].eq("noncentered")
    c_rate = fits.loc[~nc].groupby("sampler")["ess_bulk_sigma_b_per_s"].median()
    factor = fits.loc[nc, "sampler"].map({"pymc": 2.0, "nutpie": 0.5})
    fits.loc[nc, "ess_bulk_sigma_b_per_s"] = fits.loc[nc, "sampler"].map(c_rate) * factor
    v = V.compute_verdict(fits)
    assert [s.recommendation for s in v.samplers] == ["centered", "noncentered"]  # nutpie, pymc
    assert v.recommendation == V.EITHER and v.ratio_ess_per_s == pytest.approx(1.0)


def test_a_form_must_pass_with_every_sampler():
    fits = sleepstudy_like()
    bad = fits["model"].eq("centered") & fits["sampler"].eq("pymc")
    fits.loc[bad, "divergences"] = 3
    fits.loc[bad, "pass_divergences"] = False
    fits.loc[bad, "pass_all"] = False
    v = V.compute_verdict(fits)
    assert v.sampler("nutpie").recommendation == "centered"
    assert v.sampler("pymc").recommendation == "noncentered"
    assert v.recommendation == "noncentered"
    assert v.failures == [
        "centered with pymc: 0 of 8 seeds pass every check (none clean); seeds failing divergences on 8"
    ]


@pytest.mark.parametrize(("clean", "passes"), [(8, True), (5, True), (4, True), (3, True), (2, False), (0, False)])
def test_a_form_fails_its_checks_when_its_clean_seeds_are_significantly_fewer_than_half(clean, passes):
    """Binomial(8, 0.5): P(X ≤ 2) = 0.145 < 0.2 fails, P(X ≤ 3) = 0.363 passes; no clean seed always fails."""
    fits = radon_like()
    nc = fits.index[fits["model"].eq("noncentered") & fits["sampler"].eq("pymc")]
    dirty = nc[clean:]
    fits.loc[dirty, ["divergences", "pass_divergences", "pass_all"]] = [3, False, False]
    v = V.compute_verdict(fits, REF)
    form = v.form("pymc", "noncentered")
    assert V.PASS_SHARE == 0.5 and form.passing == clean and form.passes is passes
    # Failing with pymc only, the non-centered form is still recommended, with nutpie (issue 24).
    assert v.recommendation == "noncentered"
    assert v.sampler("pymc").recommendation == ("noncentered" if passes else V.NEITHER)
    if passes and clean < 8:
        # The recommended form's failing seeds are a caveat of the verdict.
        assert v.caveats == [
            f"with pymc, {8 - clean} of 8 non-centered seeds fail a check (divergences on {8 - clean})"
        ]
        assert form.checks_p == pytest.approx(stats.binom.cdf(clean, 8, 0.5))
        assert "Caveat:" in T.verdict_page(v) and "a single run of it should still be checked" in T.caveat_text(v)
    else:
        assert v.caveats == []
    if clean == 2:
        assert (
            "2 of 8 seeds pass every check (significantly fewer than half: binomial p = 0.14 < 0.2)" in form.reasons[0]
        )


# ---------------------------------------------------------------- the bias test
def test_t_against_the_reference_matches_a_hand_computation():
    estimates = [0.30, 0.28, 0.31, 0.29]
    test = V.t_against_reference(estimates, {"mean": 0.27, "mcse": 0.002})
    # mean 0.295; squared deviations 25e-6, 225e-6, 225e-6, 25e-6: s² = 5e-4 / 3
    t = 0.025 / math.sqrt(5e-4 / 3 / 4 + 0.002**2)
    assert test.t == pytest.approx(t, rel=1e-12) and t == pytest.approx(3.6995, abs=1e-4)
    assert test.df == 3 and test.n == 4 and test.estimate == pytest.approx(0.295)
    assert test.p == pytest.approx(2 * stats.t.sf(t, 3), rel=1e-12)
    # Without the reference's MCSE it is the textbook one-sample t test.
    plain = V.t_against_reference(estimates, {"mean": 0.27, "mcse": 0.0})
    expected = stats.ttest_1samp(estimates, 0.27)
    assert plain.t == pytest.approx(expected.statistic) and plain.p == pytest.approx(expected.pvalue)
    assert V.t_against_reference([0.3], {"mean": 0.27, "mcse": 0.0}) is None


def test_welch_between_forms_matches_a_hand_computation():
    c, nc = [6.3, 6.1, 6.4, 6.2], [6.0, 6.05, 6.1]
    test = V.welch_between_forms(c, nc)
    vc, vnc = np.var(c, ddof=1) / 4, np.var(nc, ddof=1) / 3
    assert test.t == pytest.approx((np.mean(c) - np.mean(nc)) / math.sqrt(vc + vnc))
    assert test.df == pytest.approx((vc + vnc) ** 2 / (vc**2 / 3 + vnc**2 / 2))
    assert test.p == pytest.approx(2 * stats.t.sf(abs(test.t), test.df))
    assert test.n == 7 and V.welch_between_forms(c, [6.0]) is None


def test_bias_is_found_across_seeds_though_every_fit_z_is_below_two():
    # 16 centered seeds with mean 0.2931 and sd 0.016 against the reference's 0.2772: each fit, with an MCSE
    # of 0.025, looks fine on its own, the mean of 16 does not.
    means = spread(0.2931, 0.016, 16)
    z = (means - REF["mean"]) / np.hypot(0.025, REF["mcse"])
    assert np.abs(z).max() < 2
    fits = frame(
        rows("nutpie", "centered", divergences=0, ess=2000, ess_per_s=900.0, means=list(means), mcse=0.025),
        rows("nutpie", "noncentered", divergences=0, ess=1500, ess_per_s=300.0, means=list(spread(0.2772, 0.01, 16))),
    )
    v = V.compute_verdict(fits, REF)
    c = v.form("nutpie", "centered")
    assert c.share_pass == 1 and c.median_abs_z < 2
    t = (0.2931 - 0.2772) / math.sqrt(0.016**2 / 16 + 0.001**2)
    assert c.bias.t == pytest.approx(t) and c.bias.t > 3.8 and c.bias.n == 16 and c.bias.p < V.ALPHA
    assert not c.passes and v.recommendation == "noncentered"  # though the centered form is 3× faster
    line = next(line for line in T.bias_lines(v) if line.startswith("nutpie / centered"))
    assert f"mean of 16 seeds 0.293 (sd 0.016), t = {t:.2f}, p = 0.0" in line and "**biased**" in line
    assert "per-fit median |z|" in line


def test_without_a_reference_two_clean_forms_that_disagree_both_fail():
    fits = sleepstudy_like()
    c = fits["model"].eq("centered")
    fits.loc[c, "mean_sigma_b"] += 0.3
    v = V.compute_verdict(fits)
    assert v.recommendation == V.NEITHER
    assert v.sampler("pymc").between.significant()
    assert len(v.failures) == 4 and all("experiments.reference" in line for line in v.failures)


# ---------------------------------------------------------------- failed seeds and the status column
@pytest.mark.parametrize(("failed", "passes"), [(1, True), (6, True), (8, False)])
def test_failed_seeds_count_as_not_passing(failed, passes):
    n = 10
    status = ["failed"] * failed + ["ok"] * (n - failed)
    fits = frame(
        rows("nutpie", "centered", divergences=5, ess=100, ess_per_s=50.0, means=[0.3] * n, status="ok"),
        rows(
            "nutpie",
            "noncentered",
            divergences=0,
            ess=1000,
            ess_per_s=100.0,
            means=list(spread(0.2772, 0.01, n)),
            status=status,
        ),
    )
    v = V.compute_verdict(fits, REF)
    nc = v.form("nutpie", "noncentered")
    assert nc.failed == failed and nc.passing == n - failed and nc.share_pass == (n - failed) / n
    assert (nc.bias is None if n - failed < 2 else nc.bias.n == n - failed) and nc.median_divergences == 0
    assert nc.passes is passes
    assert v.recommendation == ("noncentered" if passes else V.NEITHER)
    if not passes:
        assert f"{failed} fits failed to run" in nc.reasons[0]


# ---------------------------------------------------------------- output
def test_json_round_trip_and_rendering():
    fits = radon_like()
    fits["z_sigma_b"] = 1.0
    v = V.compute_verdict(fits, REF, dataset="radon")
    data = json.loads(json.dumps(v.to_dict(), allow_nan=False))
    assert data["recommendation"] == "noncentered" and data["rule"]["pass_share"] == V.PASS_SHARE
    again = V.Verdict.from_dict(data)
    assert again.to_dict() == v.to_dict()
    assert again.form("pymc", "centered").bias.t == v.form("pymc", "centered").bias.t
    page = T.verdict_page(again)
    assert "Verdict: Use the non-centered form" in page and html.escape(T.rule_text(), quote=False) in page
    assert page.count("<tr>") == 5 and "rowspan='2'" in page  # header + 4 rows; ratios once per sampler
    assert "25× non-centered" in page  # pymc ESS/s 137.5 vs 5.5
    assert "Per-fit z-scores miss what many seeds reveal" in page
    markdown = T.verdict_markdown(again)
    assert markdown.startswith("# radon: Use the non-centered form")
    assert "| pymc | centered | 0/8 (0%) | 19.5 | 65 |" in markdown
    fragment = T.verdict_html(again, figures=[("f.png", "page.html", "the funnel")])
    assert "<a href='page.html'><img src='f.png' alt='the funnel'" in fragment


def test_experiment_lines_appear_for_the_experiments_that_ran():
    fits = radon_like()
    assert T.experiment_lines(fits) == []
    fits["z_sigma_b"] = np.where(fits["model"].eq("centered"), 3.5, 0.2)
    lines = T.experiment_lines(fits)
    assert len(lines) == 1 and "centered: 16 of 16 fits have |z| ≥ 3" in lines[0]


def _leaves(value, path=()):
    """Every dataclass field in a verdict, as (path, value), walking nested dataclasses and lists."""
    import dataclasses

    if dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            yield (*path, f.name), getattr(value, f.name)
            yield from _leaves(getattr(value, f.name), (*path, f.name))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _leaves(item, (*path, i))


def _same(a, b) -> bool:
    """Equal with the same type; NaN equals NaN; dataclasses (and lists of them) are compared field by field."""
    import dataclasses

    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if dataclasses.is_dataclass(a) or (isinstance(a, list) and a and dataclasses.is_dataclass(a[0])):
        return True  # their fields are leaves of their own
    return a == b


@pytest.mark.parametrize("reference", [REF, None])
def test_json_round_trip_covers_every_field_of_the_typed_result(reference):
    """to_dict/from_dict are generated from the dataclass fields: every field of the verdict, its forms,
    samplers and bias tests comes back with its type and value (NaN as NaN, None as None), through JSON."""
    import dataclasses

    fits = radon_like()
    fits.loc[fits["model"].eq("centered") & fits["sampler"].eq("pymc"), "ess_bulk_sigma_b_per_s"] = np.nan  # NaNs
    v = dataclasses.replace(V.compute_verdict(fits, reference, dataset="radon"), experiments=["a line"])
    again = V.Verdict.from_dict(json.loads(json.dumps(v.to_dict(), allow_nan=False)))
    before, after = list(_leaves(v)), list(_leaves(again))
    assert [p for p, _ in before] == [p for p, _ in after]
    names = {p[-1] for p, _ in before}
    classes = [V.Verdict, V.FormStats, V.SamplerVerdict, V.BiasTest]
    if reference is not None:
        classes += [V.ZTest, V.EstimandTests]
    for cls in classes:
        missing = {f.name for f in dataclasses.fields(cls)} - names
        assert not missing, (cls, missing)
    for (path, x), (_, y) in zip(before, after):
        assert _same(x, y), (path, x, y)
    assert any(isinstance(x, float) and math.isnan(x) for _, x in before)  # NaN fields were exercised
    assert again.to_dict() == v.to_dict()


def test_the_rule_is_stated_once_and_worded_from_its_parameters():
    """verdict_rule.RULE holds the parameters; the short text (every page) and the full one (docs) follow them."""
    import dataclasses

    from funnel.verdict_rule import RULE, Rule

    assert (V.PASS_SHARE, V.ALPHA, V.ESS_FACTOR) == (RULE.pass_share, RULE.alpha, RULE.ess_factor)
    v = V.compute_verdict(sleepstudy_like())
    assert v.rule == {**dataclasses.asdict(RULE), "text": T.rule_text()}
    assert (v.rule["checks_alpha"], v.rule["interval"]) == (0.2, 0.95)
    other = Rule(pass_share=0.75, alpha=0.05, ess_factor=2.0)
    for text in (T.rule_text(other), T.rule_markdown(other)):
        assert "75%" in text and "0.05" in text and "2×" in text
    full = T.rule_markdown()
    assert (
        "half" in full
        and "χ²" in full
        and "Bonferroni" in full
        and "bootstrap" in full
        and "R-hat, ESS, divergences, E-BFMI" in full
        and "Welch" in full
    )
    strict = V.compute_verdict(sleepstudy_like(), pass_share=0.75, alpha=0.05, ess_factor=2.0)
    assert strict.rule["text"] == T.rule_text(other)


# --------------------------------------------------------------------------- three forms (funnel.forms)
def with_partial(fits: pd.DataFrame, speedup: float, *, like: str = "noncentered", divergences=0) -> pd.DataFrame:
    """``fits`` plus a partial form: the ``like`` form's seeds with ESS(σ_b)/s × ``speedup`` (per seed)."""
    extra = fits[fits["model"].eq(like)].copy()
    extra["model"] = "partial"
    extra["ess_bulk_sigma_b_per_s"] = extra["ess_bulk_sigma_b_per_s"] * speedup
    if divergences:
        extra["divergences"] = divergences
        extra["pass_divergences"] = extra["pass_all"] = False
    return pd.concat([fits, extra], ignore_index=True)


def test_three_forms_the_fastest_passing_form_wins_against_its_runner_up():
    """radon-like: centered fails; partial is 2× the non-centered form, beyond the band: partial, and the ratio is
    partial ÷ non-centered (the runner-up), not anything against the failing centered form."""
    v = V.compute_verdict(with_partial(radon_like(), 2.0), REF)
    assert v.recommendation == "partial", v.reason
    assert v.compared == ["noncentered", "partial"] and all(s.compared == v.compared for s in v.samplers)
    assert v.ratio_ess_per_s == pytest.approx(2.0)
    assert v.ratio_interval[0] > V.ESS_FACTOR
    assert v.reason.startswith("Both forms pass with every sampler; the partially centered form gives 2× the median")
    assert T.headline(v.recommendation) == "Use the partially centered form"
    # The pair is in the JSON, since it is not the two whole forms; it round-trips.
    data = json.loads(json.dumps(v.to_dict()))
    assert data["compared"] == ["noncentered", "partial"]
    assert V.Verdict.from_dict(data).compared == v.compared


def test_three_forms_within_the_band_of_the_best_is_either_and_names_them():
    """sleepstudy-like: centered 2.8× the non-centered; partial 1.2× the centered: the two fastest are within 1.5×:
    either, among centered and partial (the non-centered form, 2.8× slower, is not recommended)."""
    fits = sleepstudy_like()
    partial = fits[fits["model"].eq("centered")].assign(model="partial")
    partial["ess_bulk_sigma_b_per_s"] *= 1.2
    v = V.compute_verdict(pd.concat([fits, partial], ignore_index=True))
    assert v.recommendation == V.EITHER, v.reason
    assert v.compared == ["centered", "partial"] and v.ratio_ess_per_s == pytest.approx(1.2)
    assert "3 forms pass with every sampler; the two fastest, the centered and the partially centered form" in v.reason
    # Faster still (3×): the partial form is recommended over the centered one.
    partial["ess_bulk_sigma_b_per_s"] *= 2.5
    v = V.compute_verdict(pd.concat([fits, partial], ignore_index=True))
    assert v.recommendation == "partial" and v.compared == ["centered", "partial"]
    assert v.ratio_ess_per_s == pytest.approx(3.0)
    assert "the runner-up, the centered form" in v.reason


def test_a_fast_form_that_fails_is_never_recommended():
    """A partial form 10× as fast but diverging on every seed fails; the verdict is the two-form verdict."""
    fits = radon_like()
    two = V.compute_verdict(fits, REF)
    three = V.compute_verdict(with_partial(fits, 10.0, divergences=5), REF)
    assert three.recommendation == two.recommendation == "noncentered"
    # For reading, the ratio is the recommended form's against the fastest other one (the failing partial form).
    assert three.compared == ["noncentered", "partial"] and three.ratio_ess_per_s == pytest.approx(10.0)
    assert any(line.startswith("partially centered with") for line in three.failures)


def test_two_forms_keep_their_json_exactly():
    """The verdict over the two whole forms has no 'compared' key: its JSON is what it was before the registry."""
    data = V.compute_verdict(radon_like(), REF).to_dict()
    assert "compared" not in data and all("compared" not in s for s in data["samplers"])


# --------------------------------------------------------------------------- the speed: the slowest group-level scale
def scales_table(sigma_a_ess_nc: float) -> pd.DataFrame:
    """Two clean forms, 8 seeds × 2 samplers, as the diagnostics write them (ESS of σ_a and σ_b, sampling seconds,
    the per-second columns from funnel.records.scale_speeds). Centered: σ_a and σ_b both 1000 ESS in 10 s;
    non-centered: σ_b 3000 ESS in 10 s (3× the centered σ_b), σ_a ``sigma_a_ess_nc``."""
    from funnel import records as R

    out = []
    for sampler in ("pymc", "nutpie"):
        for model, ess_a, ess_b in (("centered", 1000.0, 1000.0), ("noncentered", sigma_a_ess_nc, 3000.0)):
            jitter = np.linspace(0.95, 1.05, 8)
            for row, k in zip(rows(sampler, model, divergences=0, ess=1000, ess_per_s=100.0, means=[0.3] * 8), jitter):
                row.update(ess_bulk_sigma_a=ess_a * k, ess_bulk_sigma_b=ess_b * k, sampling_seconds=10.0)
                del row["ess_bulk_sigma_b_per_s"]
                row.update(R.scale_speeds(row))
                out.append(row)
    return pd.DataFrame(out)


def test_the_speed_is_the_slowest_scale_so_a_form_slow_on_sigma_a_loses():
    """The non-centered form has 3× the centered σ_b ESS/s; by σ_b alone it would be recommended. Its σ_a mixes at
    half the centered σ_a's rate, so its slowest scale is 2× slower: the centered form wins, by 2×, not 1/3."""
    from funnel import records as R
    from funnel.verdict_rule import SPEED

    assert SPEED == R.SLOWEST_SCALE_PER_S == "ess_bulk_scales_min_per_s"
    fast_a = scales_table(sigma_a_ess_nc=5000.0)  # σ_a mixes well: σ_b is each form's slowest scale
    v = V.compute_verdict(fast_a)
    assert v.recommendation == "noncentered" and v.ratio_ess_per_s == pytest.approx(3.0), v.reason
    slow_a = scales_table(sigma_a_ess_nc=500.0)
    by_sigma_b = slow_a.groupby("model")["ess_bulk_sigma_b_per_s"].median()
    assert by_sigma_b["noncentered"] / by_sigma_b["centered"] == pytest.approx(3.0)  # σ_b alone: non-centered
    v = V.compute_verdict(slow_a)
    assert v.recommendation == "centered", v.reason
    assert v.ratio_ess_per_s == pytest.approx(0.5) and v.ratio_interval[1] < 1 / V.ESS_FACTOR
    assert "ESS per second of the slowest group-level scale" in v.reason
    assert v.form("pymc", "noncentered").median_ess_per_s == pytest.approx(50.0)
    # A table written before the column existed: the verdict computes it from the scales' ESS and the seconds.
    old = slow_a.drop(columns=[R.SLOWEST_SCALE_PER_S, R.per_s_column("sigma_a"), R.per_s_column("sigma_b")])
    again = V.compute_verdict(old)
    assert (again.recommendation, again.ratio_ess_per_s) == (v.recommendation, v.ratio_ess_per_s)
    assert again.ratio_interval == v.ratio_interval
    with pytest.raises(ValueError, match="no ESS per second of any group-level scale"):
        V.compute_verdict(old.drop(columns=["sampling_seconds"]))
