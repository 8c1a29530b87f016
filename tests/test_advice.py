"""The verdict's advice (workflow/funnel/advice.py, its words in verdict_text.py) on per-seed records shaped
like the datasets of issue 24 (a sparse MathAchieve subset, nlme's Orthodont) and on the default radon run."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from funnel import advice as A
from funnel import verdict as V
from funnel import verdict_text as T

BASELINE = Path(__file__).parent / "references" / "radon_baseline"


def seeds(
    sampler: str,
    model: str,
    *,
    divergences,
    rhat_ok=True,
    ess=2000.0,
    ess_per_s=100.0,
    bfmi_ok=True,
    mean=0.3,
    target_accept=0.8,
    tune=1000,
) -> list[dict]:
    """One row per seed (8 seeds unless ``divergences`` is a list of another length)."""
    divergences = list(divergences) if isinstance(divergences, list | tuple) else [divergences] * 8
    n = len(divergences)

    def each(value):
        return list(value) if isinstance(value, list | tuple) else [value] * n

    rhat_ok, ess, bfmi_ok = each(rhat_ok), each(ess), each(bfmi_ok)
    means = mean + 0.01 * (np.linspace(-1, 1, n))
    out = []
    for i in range(n):
        checks = {
            "pass_divergences": divergences[i] == 0,
            "pass_rhat": bool(rhat_ok[i]),
            "pass_ess": ess[i] >= 400,
            "pass_bfmi": bool(bfmi_ok[i]),
        }
        out.append(
            {
                "dataset": "trial",
                "sampler": sampler,
                "model": model,
                "seed": i + 1,
                "status": "ok",
                "divergences": divergences[i],
                **checks,
                "pass_all": all(checks.values()),
                "ess_bulk_sigma_b": ess[i],
                "ess_bulk_sigma_b_per_s": ess_per_s,
                "mean_sigma_b": means[i],
                "target_accept": target_accept,
                "tune": tune,
            }
        )
    return out


def table(*groups: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([row for group in groups for row in group])


def math_achieve_like() -> pd.DataFrame:
    """586 students in 160 schools: nutpie's non-centered form passes 8 of 8 seeds at 367× the centered
    ESS(σ_b)/s; PyMC's non-centered form has 0–5 divergences per seed (median 2.5) and passes 2 of 8;
    the centered form fails with both."""
    return table(
        seeds("nutpie", "centered", divergences=40, ess=60, ess_per_s=0.5, rhat_ok=False, bfmi_ok=False),
        seeds("nutpie", "noncentered", divergences=0, ess=3000, ess_per_s=183.5),
        seeds("pymc", "centered", divergences=300, ess=30, ess_per_s=0.1, rhat_ok=False, bfmi_ok=False),
        seeds("pymc", "noncentered", divergences=[0, 0, 1, 2, 3, 3, 4, 5], ess=1500, ess_per_s=20.0),
    )


MATH_X = A.XFacts("ses", -0.01, 0.8)  # MathAchieve's ses: centered by construction


def orthodont_like() -> pd.DataFrame:
    """Orthodont (27 children, age 8–14): nutpie's non-centered form passes 5 of 8 seeds (R-hat and ESS fail on
    the rest: intercepts and slopes correlated), PyMC's 3 of 8; the centered form fails with both."""
    slow = [True] * 5 + [False] * 3
    return table(
        seeds("nutpie", "centered", divergences=12, ess=80, ess_per_s=1.0, rhat_ok=False),
        seeds("nutpie", "noncentered", divergences=0, rhat_ok=slow, ess=[900] * 5 + [250] * 3, ess_per_s=10.0),
        seeds("pymc", "centered", divergences=50, ess=40, ess_per_s=0.2, rhat_ok=False),
        seeds("pymc", "noncentered", divergences=[0, 0, 0, 1, 2, 1, 3, 1], ess=600, ess_per_s=4.0),
    )


AGE = np.repeat(np.array([8.0, 10.0, 12.0, 14.0]), 27)  # every child measured at 8, 10, 12 and 14


def with_advice(fits: pd.DataFrame, x: A.XFacts | None, sweep: pd.DataFrame | None = None) -> V.Verdict:
    verdict = V.compute_verdict(fits)
    return dataclasses.replace(verdict, advice=A.advise(verdict, x=x, fits=fits, target_accept_summary=sweep))


def sweep(divergences_at_high: float) -> pd.DataFrame:
    """A target_accept sweep of PyMC's non-centered form: median divergences 2.5 at 0.8, the given at 0.99."""
    return pd.DataFrame(
        {
            "sampler": ["pymc", "pymc"],
            "model": ["noncentered", "noncentered"],
            "target_accept": [0.8, 0.99],
            "seeds": [8, 8],
            "divergences_median": [2.5, divergences_at_high],
            "ess_bulk_sigma_b_median": [1500.0, 1400.0],
        }
    )


# ---------------------------------------------------------------- MathAchieve: the samplers disagree
def test_math_achieve_like_records_recommend_the_noncentered_form_with_nutpie_and_the_pymc_remedy():
    v = with_advice(math_achieve_like(), MATH_X)
    assert v.recommendation == "noncentered"  # not "neither": it passes with nutpie
    assert v.sampler("nutpie").recommendation == "noncentered" and v.sampler("pymc").recommendation == V.NEITHER
    assert T.headline_sentence(v) == (
        "Use the non-centered form: it passes 8 of 8 seeds with nutpie; with PyMC's NUTS it still diverges on "
        "6 of 8 seeds: raise target_accept from 0.8 to 0.95 or more."
    )
    assert "passes with nutpie but not with PyMC's NUTS" in v.reason
    first = v.advice[0]
    assert (first.kind, first.sampler, first.model) == (A.TARGET_ACCEPT, "pymc", "noncentered")
    assert first.score == pytest.approx(6 / 8) and first.sweep == "" and not first.modelling
    assert "median 2.5 divergences per seed, 6 of 8 seeds with any" in first.evidence
    # ses is centered already: no modelling change proposed; the centered form's failures are not advised on.
    kinds = [r.kind for r in v.advice]
    assert A.CENTER_X not in kinds and all(r.model == "noncentered" for r in v.advice)
    assert A.PARTIAL in kinds  # the other form is worse with pymc, so not proposed; partial centering is


def test_the_sweep_confirms_or_rejects_the_first_remedy():
    confirmed = with_advice(math_achieve_like(), MATH_X, sweep(0.0))
    assert confirmed.advice[0].kind == A.TARGET_ACCEPT and confirmed.advice[0].sweep == A.CONFIRMED
    assert "the target_accept sweep confirms it: median divergences 2.5 at 0.8 and 0 at 0.99" in (
        confirmed.advice[0].evidence
    )
    assert "[confirmed by the sweep]" in T.remedy_line(confirmed.advice[0])

    rejected = with_advice(math_achieve_like(), MATH_X, sweep(2.5))
    raise_it = [r for r in rejected.advice if r.kind == A.TARGET_ACCEPT]
    assert raise_it[0].sweep == A.REJECTED and rejected.advice[0].kind != A.TARGET_ACCEPT
    # The headline no longer proposes what the sweep rejected.
    assert "raise target_accept" not in T.headline_sentence(rejected)
    assert T.headline_sentence(rejected).endswith("6 of 8 seeds: fit the partially centered form.")


# ---------------------------------------------------------------- Orthodont: x far from zero
def test_orthodont_like_records_advise_centering_x_as_a_modelling_change():
    x = A.XFacts("age", float(AGE.mean()), float(AGE.std(ddof=1)))
    assert x.offset == pytest.approx(11 / AGE.std(ddof=1)) and x.far_from_zero
    v = with_advice(orthodont_like(), x)
    assert v.recommendation == "noncentered"
    center = [r for r in v.advice if r.kind == A.CENTER_X]
    assert len(center) == 1 and center[0].modelling
    line = T.remedy_line(center[0])
    assert "center x: fit on age − 11" in line and "(a modelling change)" in line
    assert "mean(age) = 11 is 4.9 standard deviations" in center[0].evidence


def test_orthodont_like_with_no_passing_form_says_neither_and_what_to_try_first():
    fits = orthodont_like()
    nutpie_nc = fits["sampler"].eq("nutpie") & fits["model"].eq("noncentered")
    # 2 of 8 clean with each sampler: significantly fewer than half (binomial p = 0.145 < 0.2), so neither passes.
    fits.loc[fits.index[nutpie_nc][2:5], ["pass_rhat", "pass_all"]] = False
    pymc_nc = fits["sampler"].eq("pymc") & fits["model"].eq("noncentered")
    fits.loc[fits.index[pymc_nc][2], "divergences"] = 1
    fits.loc[fits.index[pymc_nc][2], ["pass_divergences", "pass_all"]] = False
    x = A.XFacts("age", float(AGE.mean()), float(AGE.std(ddof=1)))
    v = with_advice(fits, x)
    assert v.recommendation == V.NEITHER
    kinds = {(r.kind, r.sampler) for r in v.advice}
    assert {(A.CENTER_X, ""), (A.MORE_TUNING, "nutpie"), (A.TARGET_ACCEPT, "pymc")} <= kinds
    assert (A.OTHER_FORM, "pymc") in kinds  # the centered form diverges more: the non-centered is the other form
    headline = T.headline_sentence(v)
    assert headline.startswith("Neither form passes with any sampler: first try to ")
    # Ranked by evidence: the scores never increase down the list.
    scores = [r.score for r in v.advice]
    assert scores == sorted(scores, reverse=True)


def test_low_e_bfmi_points_to_the_other_form():
    fits = table(
        seeds("nutpie", "centered", divergences=0, bfmi_ok=False),
        seeds("nutpie", "noncentered", divergences=0, bfmi_ok=False),
    )
    v = with_advice(fits, None)
    assert v.recommendation == V.NEITHER
    assert {(r.kind, r.model) for r in v.advice} == {(A.OTHER_FORM, "centered"), (A.OTHER_FORM, "noncentered")}
    assert "has a low E-BFMI on 8 of 8 seeds" in T.remedy_line(v.advice[0])


def test_x_facts_from_a_table():
    facts = A.x_facts(pd.DataFrame({"age": AGE}), "age")
    assert facts.mean == 11 and facts.far_from_zero
    assert not A.x_facts(pd.DataFrame({"floor": [0, 1, 0, 0]}), "floor").far_from_zero
    assert A.XFacts("x", 3.0, 0.0).offset == np.inf and A.XFacts("x", 0.0, 0.0).offset == 0


# ---------------------------------------------------------------- the default radon run, and the JSON
def test_the_default_radon_run_still_recommends_the_noncentered_form_and_needs_no_advice():
    fits = pd.read_csv(BASELINE / "fits.csv")
    before = json.loads((BASELINE / "verdict.json").read_text())
    floor = A.XFacts("floor", 0.1665, 0.3727)  # the cleaned radon table's floor (0 basement, 1 first floor)
    v = with_advice(fits, floor)
    assert before["recommendation"] == v.recommendation == "noncentered"
    assert v.advice == [] and not floor.far_from_zero
    assert T.headline_sentence(v) == (
        "Use the non-centered form: it passes 6 of 8 seeds with nutpie and 5 of 8 seeds with PyMC's NUTS."
    )

    # The same failures and caveats; only the words of the checks rule in parentheses changed with the rule.
    def unworded(lines: list[str]) -> list[str]:
        return [re.sub(r" \(.*?\)", "", line) for line in lines]

    assert unworded(v.failures) == unworded(before["failures"]) and v.caveats == before["caveats"]


def test_the_advice_round_trips_through_json():
    x = A.XFacts("age", 11.0, 2.25)
    v = with_advice(orthodont_like(), x, sweep(0.0))
    assert v.advice
    text = json.dumps(v.to_dict(), allow_nan=False)
    again = V.Verdict.from_dict(json.loads(text))
    assert again == v and isinstance(again.advice[0], A.Remedy)


def test_the_advice_is_on_the_page_and_in_the_markdown():
    v = with_advice(math_achieve_like(), MATH_X)
    page = T.verdict_page(v)
    assert "What to try" in page and "raise target_accept from 0.8 to 0.95 or more" in page
    assert T.headline_sentence(v).replace("'", "&#x27;") in page
    markdown = T.verdict_markdown(v)
    assert "## What to try" in markdown and T.remedy_line(v.advice[0]) in markdown


def test_samplers_that_each_pass_a_different_form_say_which_goes_with_which():
    fits = table(
        seeds("nutpie", "centered", divergences=0, ess_per_s=100.0),
        seeds("nutpie", "noncentered", divergences=3),
        seeds("pymc", "centered", divergences=3),
        seeds("pymc", "noncentered", divergences=0, ess_per_s=100.0),
    )
    v = with_advice(fits, None)
    assert v.recommendation == V.EITHER
    assert T.headline_sentence(v) == (
        "Either form: no form passes with every sampler, but each passes with some: with nutpie, use the "
        "centered form; with PyMC's NUTS, use the non-centered form."
    )


def test_the_partial_remedy_names_the_registered_form_until_it_was_fitted():
    """Not fitted: add `partial` to fit.models. Fitted (and still failing): the continuous weight, not fitted here."""
    fits = math_achieve_like()
    first = [r for r in with_advice(fits, None).advice if r.kind == A.PARTIAL]
    assert first and first[0].text.startswith("fit the partially centered form: add partial to fit.models")
    partial = seeds("pymc", "partial", divergences=[0, 1, 2, 3, 3, 4, 5, 6], ess=1500, ess_per_s=20.0)
    with_partial = pd.concat([fits, table(partial)], ignore_index=True)
    after = [r for r in with_advice(with_partial, None).advice if r.kind == A.PARTIAL]
    assert after and all("not fitted by this workflow" in r.text for r in after)
    assert not any("add partial to fit.models" in r.text for r in after)
