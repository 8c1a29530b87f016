"""The report over any number of forms (issue 25): prose, facts, figures and the index read the registry
(funnel.forms) and the forms actually fitted; with the two whole forms alone every sentence is the one it
always was."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from funnel import facts as F
from funnel import forms, index_page, plots, prose
from funnel import verdict as V
from funnel.plots.style import FORM_COLORS
from test_report import _fits, _maps, _trial_dataset

SPLIT = {
    "centered_a": 39,
    "centered_b": 0,
    "pilot_eps": 0.748,
    "pilot_sigma_a": 0.327,
    "pilot_sigma_b": 0.282,
    "pilot_seconds": 0.04,
}


@pytest.fixture(autouse=True, scope="module")
def _agg_backend():
    import matplotlib

    matplotlib.use("Agg")


def _three() -> pd.DataFrame:
    """_fits()'s two whole forms plus a partial form: the non-centered seeds at twice the ESS(σ_b), no divergence,
    its split recorded; every form with an ESS(σ_b) per second; rows shuffled (partial first)."""
    fits = _fits()
    partial = fits[fits["model"].eq("noncentered")].assign(
        model="partial", divergences=0, pass_all=True, mean_sigma_b=[0.27, 0.28, 0.26] * 2, **SPLIT
    )
    partial["ess_bulk_sigma_b"] *= 2
    out = pd.concat([partial, fits], ignore_index=True)
    return out.assign(ess_bulk_sigma_b_per_s=out["ess_bulk_sigma_b"] / 10.0, rhat_max=1.0)


def _three_maps() -> pd.DataFrame:
    partial = _maps().iloc[[1]].assign(model="partial", map_sigma_b=0.8, posterior_mean_sigma_b=0.27)
    return pd.concat([partial, _maps()], ignore_index=True)  # partial first: the figure and text reorder it


# ---------------------------------------------------------------- order
def test_forms_come_in_the_registrys_order_not_the_tables_or_the_alphabets(monkeypatch):
    fits = _three()
    assert F.group_order(fits) == [(s, m) for s in ("nutpie", "pymc") for m in ("centered", "noncentered", "partial")]
    assert list(F.group_stats(fits).index) == F.group_order(fits)
    assert F.extra_forms(fits["model"]) == ["partial"] and F.extra_forms(["noncentered", "centered"]) == []
    # A registry that lists the partial form first puts it first everywhere: the order is the registry's.
    reordered = {name: forms.FORMS[name] for name in ("partial", "noncentered", "centered")}
    monkeypatch.setattr(F, "FORMS", reordered)
    assert F.form_order(["centered", "partial", "noncentered"]) == ["partial", "noncentered", "centered"]
    assert [m for s, m in F.group_order(fits) if s == "pymc"] == ["partial", "noncentered", "centered"]
    assert F.form_order(["zeta", "centered", "alpha"]) == ["centered", "alpha", "zeta"]  # unknown names last


# ---------------------------------------------------------------- figures
def test_every_figure_shows_every_form_in_its_own_colour_and_place():
    import matplotlib.pyplot as plt
    from matplotlib.collections import PathCollection
    from matplotlib.colors import to_hex

    fits = _three()
    fig = plots.plot_across_seeds(fits, rhat_max=1.01, ess_min=400)
    for ax in fig.axes:
        ticks = [t.get_text() for t in ax.get_xticklabels()]
        assert ticks == [f"{s}\n{m}" for s, m in F.group_order(fits)]
        # Each strip's dots are its form's colour, strip by strip (a swapped colour or a dropped form fails).
        colours = [to_hex(c.get_facecolors()[0]) for c in ax.collections if isinstance(c, PathCollection)]
        assert colours == [FORM_COLORS[m] for _, m in F.group_order(fits)]
    assert (
        FORM_COLORS["partial"]
        == forms.form("partial").color
        not in {FORM_COLORS["centered"], FORM_COLORS["noncentered"]}
    )

    samples = {m: np.linspace(0.1, 0.5, 20) + i / 10 for i, m in enumerate(("partial", "centered", "noncentered"))}
    ax = plots.plot_sigma_b_posteriors(samples, 0.1)
    assert [to_hex(p.get_edgecolor()) for p in ax.patches] == [FORM_COLORS[m] for m in forms.NAMES]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["centered (20 draws)", "centered mean 0.4"] and "partial (20 draws)" in labels

    ax = plots.plot_map_vs_mean(_three_maps())
    assert [t.get_text() for t in ax.get_xticklabels()] == list(forms.NAMES)
    bars = [to_hex(p.get_facecolor()) for p in ax.patches[:3]]
    assert bars == [FORM_COLORS[m] for m in forms.NAMES]
    heights = [p.get_height() for p in ax.patches[:3]]
    assert heights == pytest.approx([6.2e-05, 4.9, 0.8])  # each form's own MAP, not another's
    plt.close("all")


# ---------------------------------------------------------------- prose
def test_the_comparisons_sentences_name_every_form_and_stay_as_they_were_for_two():
    two, three = _fits().assign(ess_bulk_sigma_b_per_s=lambda f: f["ess_bulk_sigma_b"] / 10.0), _three()
    # The σ_b bias: the two whole forms' sentence, then the partial form against the non-centered.
    old = prose.describe_bias(F.sigma_b_bias(two, "pymc"))
    text = prose.describe_bias(F.sigma_b_bias(three, "pymc"))
    assert text.startswith(old) and "partially" not in old
    assert (
        text[len(old) :]
        == " The partially centered form: 0.270 (3.8% above the non-centered); share of draws with σ_b < 0.1: 10.0%."
    )
    assert prose.pooled_means({"partial": 0.27, "centered": 0.31, "noncentered": 0.26}) == (
        "centered 0.310, non-centered 0.260, partially centered 0.270"
    )
    assert prose.posteriors_heading(["centered", "noncentered"]) == "## 3. σ_b posteriors of both forms"
    assert prose.posteriors_heading(forms.NAMES) == "## 3. σ_b posteriors of the three forms"
    assert prose.forms_title(["partial", "noncentered", "centered"]) == "centered vs non-centered vs partially centered"
    assert prose.forms_title(["noncentered", "centered"]) == "centered vs non-centered"

    # Conclusions: one more line per sampler for the partial form, the whole forms' lines unchanged.
    lines2 = prose.conclusions(two, _maps(), rhat_max=1.01, ess_min=400)
    lines3 = prose.conclusions(three, _three_maps(), rhat_max=1.01, ess_min=400)
    partial = [line for line in lines3 if "partially centered" in line]
    assert partial == [
        f"**{s}**, partially centered: 0 of 3 fits diverged (0 divergent transitions in all); median bulk ESS of σ_b "
        "2000 against 90 centered and 1000 non-centered; per second of sampling 200 against 9 centered and 100 "
        "non-centered."
        for s in ("nutpie", "pymc")
    ]
    assert [line for line in lines3 if line not in partial][:2] == lines2[:2]
    assert not [line for line in lines2 if "partially" in line]

    # The MAP bullets: one per form fitted, in the registry's order; the two whole forms' as they were.
    bullets = prose.map_lines(_three_maps())
    assert [b.split("**")[1] for b in bullets] == ["centered", "non-centered", "partially centered"]
    assert bullets[:2] == prose.map_lines(_maps())
    assert bullets[1] == "- **non-centered**: MAP σ_b = 4.90, 19 times the posterior mean 0.260 (inflated)."
    assert bullets[2] == "- **partially centered**: MAP σ_b = 0.800, 3.0 times the posterior mean 0.270 (inflated)."


def test_the_partial_forms_split_and_description_appear_only_when_it_ran():
    three = _three()
    splits = F.form_splits(three)
    assert list(splits) == ["partial"] and splits["partial"] == forms.split_text({"model": "partial", **SPLIT}).strip()
    assert F.form_splits(_fits()) == {}
    text = prose.other_forms_paragraph(["centered", "noncentered", "partial"], splits, "nutpie")
    assert text.startswith(
        "Besides the two whole forms this run fitted the **partially centered** form (per group and effect, centered "
        "where the group's data pin the effect down). It appears beside them in every table and figure below"
    )
    assert "funnel.partial" not in text
    assert "the intercepts of 39 groups and the slopes of 0 are sampled centered" in text
    assert prose.other_forms_paragraph(["centered", "noncentered"], splits, "nutpie") == ""
    assert prose.other_form_heading("partial", 0) == "### 2b. The partially centered form"
    assert prose.moves_in("centered") == "" and "b_offset instead" in prose.moves_in("noncentered")
    assert "groups whose slope it centers" in prose.moves_in("partial")


def test_the_headline_names_the_winner_and_its_lead_over_the_runner_up():
    verdict = V.compute_verdict(_three(), dataset="trial")
    assert verdict.recommendation == "partial" and verdict.compared == ["noncentered", "partial"]
    lead = verdict.ratio_ess_per_s
    lo, hi = verdict.ratio_interval
    text = prose.ranking_sentence(verdict)
    assert text.startswith(
        "Of the three forms fitted, the partially centered form wins: its geometric mean over samplers of the "
        f"medians ESS per second of the slowest group-level scale is {prose.num(lead, 2)}× that of the runner-up, the non-centered form "
        f"(95% bootstrap interval over seeds {prose.num(lo, 2)}–{prose.num(hi, 2)})"
    )
    assert lead == pytest.approx(2.0) and text.endswith(".")
    # The two whole forms alone: the verdict's own reason says it; no sentence added.
    assert prose.ranking_sentence(V.compute_verdict(_fits().assign(ess_bulk_sigma_b_per_s=1.0))) == ""
    # The pick is the first form of the pair: the ratio is turned round, so that it is the pick's lead.
    slow = _three()
    slow.loc[slow["model"].eq("partial"), "ess_bulk_sigma_b_per_s"] /= 8
    v = V.compute_verdict(slow)
    assert v.recommendation == "noncentered" and v.compared == ["noncentered", "partial"]
    assert (
        f"non-centered form wins: its geometric mean over samplers of the medians ESS per second of the slowest group-level scale is {prose.num(1 / v.ratio_ess_per_s, 2)}× that of the runner-up, the partially centered form"
        in prose.ranking_sentence(v)
    )


# ---------------------------------------------------------------- the index
def test_the_first_screen_introduces_the_third_form_and_its_lead(tmp_path):
    index = "results/report/index.html"
    two = V.compute_verdict(_fits().assign(ess_bulk_sigma_b_per_s=lambda f: f["ess_bulk_sigma_b"] / 10.0))
    three = V.compute_verdict(_three())
    before = index_page.first_screen(index, {"trial": (two, "results/trial/report/comparison.html")})
    assert "This run fitted both, with several seeds" in before and "See the two forms side by side</a>" in before
    assert "third" not in before and "partially" not in before
    after = index_page.first_screen(index, {"trial": (three, "results/trial/report/comparison.html")})
    assert "A third form, <em>partially centered</em>, mixes the two: per group and effect, centered where" in after
    assert "This run fitted all three, with several seeds" in after and "See the three forms side by side</a>" in after
    line = after[after.index("<p class='for-you'>") :]
    assert line.index("Use the partially centered form") < line.index("Of the three forms fitted, the partially")
    assert "the runner-up, the non-centered form" in line
    # Everything else on the screen is what it was (a newcomer's words first, no table).
    assert after.replace(after[after.index(" A third form") : after.index(" This run fitted")], "").startswith(
        before[: before.index("This run fitted")]
    )
    assert index_page.index_intro([two]).startswith("Centered vs non-centered varying-intercept")
    assert index_page.index_intro([three]).startswith("Centered vs non-centered vs partially centered varying-")
    assert "varying-slope models: for each" in index_page.index_intro([two])
    assert "varying-slope models and models by formula: for each" in index_page.index_intro([two], [two])
    assert "; last, the table across datasets." in index_page.index_intro([two])


def test_an_index_of_formula_datasets_alone_explains_the_funnel_with_a_scale_and_gives_each_verdict():
    index = "results/report/index.html"
    verdict = V.compute_verdict(_fits().assign(ess_bulk_sigma_b_per_s=lambda f: f["ess_bulk_sigma_b"] / 10.0))
    intro = index_page.index_intro([], [verdict])
    assert intro.startswith("Centered vs non-centered models by formula: for each dataset")
    assert "table across datasets" not in intro
    alone = index_page.first_screen(index, {}, {"cb<b>pp": verdict})
    assert "a group-level scale σ" in alone and "(u = σ·z)" in alone and "σ_b" not in alone
    assert "For your model on <a href='#dataset-" in alone and "cb&lt;b&gt;pp</a>:" in alone
    assert prose_headline(verdict) in alone and "This run fitted both" in alone
    # Beside a varying-intercept, varying-slope dataset, the screen explains σ_b, and gives both verdicts.
    both = index_page.first_screen(index, {"trial": (verdict, None)}, {"cbpp": verdict})
    assert "spread of slopes is σ_b" in both and both.count("<p class='for-you'>") == 2


def prose_headline(verdict) -> str:
    from funnel.escape import html_text
    from funnel.verdict_text import headline_sentence

    return html_text(headline_sentence(verdict))


def test_the_index_section_lists_every_forms_fit_group_and_names_the_comparison_after_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fits = _three()
    base = _trial_dataset(fits)
    stats = F.group_stats(fits)
    summary = pd.DataFrame(
        [
            {
                "sampler": s,
                "model": m,
                "seeds": 3,
                "divergences_median": stats.loc[(s, m), "divergences_median"],
                "divergences_min": 0,
                "divergences_max": 5,
                "rhat_max_median": 1.01,
                "ess_bulk_sigma_b_median": stats.loc[(s, m), "ess_bulk_sigma_b_median"],
                "ess_bulk_sigma_b_min": 60,
                "ess_bulk_sigma_b_max": 2200,
                "mean_sigma_b_median": 0.3,
                "share_pass_all": 0.0,
            }
            for s, m in reversed(F.group_order(fits))
        ]
    )
    summary.to_csv(base / "tables/summary.csv", index=False)
    _three_maps().to_csv(base / "tables/map_vs_mean.csv", index=False)
    pages = {(s, m): str(base / f"report/fit_{s}_{m}.html") for s, m in reversed(F.group_order(fits))}
    _, entries = index_page.dataset_section(
        "results/report/index.html",
        "trial",
        pages={"data": str(base / "report/data.html"), "comparison": str(base / "report/comparison.html")},
        group_pages=pages,
        tables={k: str(base / f"tables/{k}.csv") for k in ("fits", "summary")}
        | {"map_table": str(base / "tables/map_vs_mean.csv")},
        table=str(base / "data/table.csv"),
        provenance=str(base / "data/provenance.json"),
        sampler="pymc",
    )
    groups = [text for text, _, _ in entries if text.startswith("Fit group")]
    assert groups == [f"Fit group {s} / {m}" for s, m in F.group_order(fits)]
    (title, _, line) = next(e for e in entries if e[1].endswith("comparison.html"))
    assert title == "Centered vs non-centered vs partially centered"
    assert line.startswith(
        "pymc: median bulk ESS(σ_b) centered 90 vs non-centered 1000 vs partially centered 2000, divergences 5 vs 0 vs 0"
    )
    # Two forms: the line the index always had.
    two = summary[summary["model"].ne("partial")]
    assert prose.comparison_line(two, _maps(), "pymc").startswith(
        "pymc: median bulk ESS(σ_b) centered 90 vs non-centered 1000, divergences 5 vs 0; centered MAP σ_b 6.2e-05"
    )


def test_no_passing_form_of_three_is_no_form_and_of_two_neither():
    from funnel import verdict_text as T

    failing = _three().assign(divergences=5, pass_all=False, pass_divergences=False)
    three = V.compute_verdict(failing, dataset="trial")
    assert three.recommendation == "neither passes"
    assert T.headline_sentence(three).startswith("No form passes")
    assert T.verdict_markdown(three).startswith("# trial: No form passes")
    two = V.compute_verdict(failing[failing["model"].ne("partial")], dataset="trial")
    assert T.headline_sentence(two).startswith("Neither form passes")
